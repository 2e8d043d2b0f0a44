#!/usr/bin/env bash
# harness_filter.sh — the test.h main as ctest and a developer use it: no argument runs
# every test; one test's name runs that test alone; a name no test has (a typo, a renamed
# test) fails with "no test matches 'NAME'" instead of passing with nothing run.
# Arg: a unit-test binary holding the test duration_units (test_units).
set -u
BIN=$1
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails+1)); }

out=$("$BIN" 2>&1); rc=$?
[ $rc -eq 0 ] || fail "no filter: exit $rc: $out"
echo "$out" | grep -qE '^[1-9][0-9]* passed, 0 failed$' || fail "no filter: summary: $out"

out=$("$BIN" duration_units 2>&1); rc=$?
[ $rc -eq 0 ] || fail "one test: exit $rc: $out"
[ "$out" = "$(printf 'ok   duration_units\n1 passed, 0 failed')" ] || fail "one test: output: $out"

out=$("$BIN" no_such_test 2>&1); rc=$?
[ $rc -eq 2 ] || fail "unknown name: exit $rc, want 2: $out"
[ "$out" = "no test matches 'no_such_test'" ] || fail "unknown name: output: $out"

out=$("$BIN" duration 2>&1); rc=$?
[ $rc -eq 2 ] || fail "a prefix is not a name: exit $rc, want 2: $out"

[ $fails -eq 0 ] && echo "harness_filter: ok"
[ $fails -eq 0 ]
