// run.mjs — runs frames.test.mjs with @grafana/data bundled in by esbuild: the package's
// CommonJS build requires ES-only modules (which Node 18 cannot), and its ES build imports
// files without their extensions (which Node cannot resolve); a bundle runs on any Node.
// usage: node run.mjs STRATA_BINARY WORK_DIR
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const [strata, work] = process.argv.slice(2);
if (!strata || !work) {
  console.error('usage: node run.mjs STRATA_BINARY WORK_DIR');
  process.exit(2);
}
let esbuild;
try {
  esbuild = await import('esbuild');
} catch (e) {
  console.error(`esbuild is not installed beside this test (${e.message}): scripts/install-test-deps.sh installs it (npm ci in tests/grafana)`);
  process.exit(2);
}
fs.mkdirSync(work, { recursive: true });
const out = path.join(work, 'frames.bundle.mjs');
await esbuild.build({
  entryPoints: [path.join(here, 'frames.test.mjs')], bundle: true, platform: 'node', format: 'esm',
  target: 'node18', outfile: out, logLevel: 'error',
  // @grafana/data reads window at load time; bundled CommonJS code calls require
  banner: { js: "globalThis.window ??= {}; import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
const r = spawnSync(process.execPath, [out, strata, path.join(work, 'run')], { stdio: 'inherit' });
process.exit(r.status ?? 1);
