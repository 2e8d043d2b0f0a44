/*
 * test.h — the unit-test harness: ASSERT_* macros that print file, line and both operands,
 * and a TEST()/test main that runs every registered test and prints "N passed, N failed".
 *
 * Each test binary holds the tests of one module. A failing assertion ends the current
 * test (longjmp) and the binary exits non-zero after running the rest.
 */
#ifndef STRATA_TEST_H
#define STRATA_TEST_H

#include <dirent.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void (*test_fn)(void);
struct test_case {
    const char *name;
    test_fn fn;
};

extern jmp_buf test_jmp;
extern int test_failed_current;

#define TEST_FAIL_(...)                                                                            \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        test_failed_current = 1;                                                                   \
        longjmp(test_jmp, 1);                                                                      \
    } while (0)

#define ASSERT(c)                                                                                  \
    do {                                                                                           \
        if (!(c))                                                                                  \
            TEST_FAIL_("assertion failed: %s", #c);                                                \
    } while (0)

#define ASSERT_INT_OP_(a, op, b)                                                                   \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (!(a_ op b_))                                                                           \
            TEST_FAIL_("%s %s %s: %lld vs %lld", #a, #op, #b, a_, b_);                             \
    } while (0)
#define ASSERT_EQ(a, b) ASSERT_INT_OP_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_INT_OP_(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_INT_OP_(a, <, b)
#define ASSERT_LE(a, b) ASSERT_INT_OP_(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_INT_OP_(a, >, b)
#define ASSERT_GE(a, b) ASSERT_INT_OP_(a, >=, b)

#define ASSERT_U64_EQ(a, b)                                                                        \
    do {                                                                                           \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);             \
        if (a_ != b_)                                                                              \
            TEST_FAIL_("%s == %s: %llu vs %llu", #a, #b, a_, b_);                                  \
    } while (0)

#define ASSERT_DBL_EQ(a, b)                                                                        \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (memcmp(&a_, &b_, sizeof a_) != 0)                                                      \
            TEST_FAIL_("%s == %s: %.17g vs %.17g", #a, #b, a_, b_);                                \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (strcmp(a_, b_) != 0)                                                                   \
            TEST_FAIL_("%s == %s: \"%s\" vs \"%s\"", #a, #b, a_, b_);                              \
    } while (0)

#define ASSERT_CONTAINS(hay, needle)                                                               \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!strstr(h_, n_))                                                                       \
            TEST_FAIL_("%s contains %s: \"%s\" lacks \"%s\"", #hay, #needle, h_, n_);              \
    } while (0)

/* Test registration: list tests in a TEST_LIST at the end of the file. The main it defines
 * runs every test, or with one argument only the test of that name; it exits 0 when all
 * that ran passed, 1 when one failed, 2 on a usage error or when no test ran (a name that
 * matches no test prints "no test matches 'NAME'"). */
#define TEST(name) static void name(void)
#define TEST_LIST(...)                                                                             \
    jmp_buf test_jmp;                                                                              \
    int test_failed_current;                                                                       \
    static const struct test_case test_cases_[] = {__VA_ARGS__};                                   \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        static int passed, failed;                                                                 \
        static size_t i;                                                                           \
        if (argc > 2) {                                                                            \
            fprintf(stderr, "usage: %s [TEST_NAME]\n", argv[0]);                                   \
            return 2;                                                                              \
        }                                                                                          \
        for (i = 0; i < sizeof test_cases_ / sizeof test_cases_[0]; i++) {                         \
            if (argc > 1 && strcmp(argv[1], test_cases_[i].name) != 0)                            \
                continue;                                                                          \
            test_failed_current = 0;                                                               \
            if (setjmp(test_jmp) == 0)                                                             \
                test_cases_[i].fn();                                                               \
            if (test_failed_current) {                                                             \
                failed++;                                                                          \
                fprintf(stderr, "FAIL %s\n", test_cases_[i].name);                                 \
            } else {                                                                               \
                passed++;                                                                          \
                fprintf(stderr, "ok   %s\n", test_cases_[i].name);                                 \
            }                                                                                      \
        }                                                                                          \
        if (passed + failed == 0) {                                                                \
            /* A filter that selects nothing (a typo, a renamed test) must not pass. */            \
            if (argc > 1)                                                                          \
                fprintf(stderr, "no test matches '%s'\n", argv[1]);                                \
            else                                                                                   \
                fprintf(stderr, "no tests in the TEST_LIST\n");                                    \
            return 2;                                                                              \
        }                                                                                          \
        printf("%d passed, %d failed\n", passed, failed);                                          \
        return failed ? 1 : 0;                                                                     \
    }
#define T(fn) {#fn, fn}

/* How many times slower than a release build this run may be: STRATA_TEST_SLOWDOWN (the
 * sanitizer test presets set it), 1 without it. Deadlines in tests are scaled by it. */
static inline double test_slowdown(void)
{
    const char *v = getenv("STRATA_TEST_SLOWDOWN");
    double f = v ? atof(v) : 1.0;
    return f >= 1.0 ? f : 1.0;
}

/* A fresh empty directory $STRATA_TEST_TMP/NAME-PID (/tmp without the variable) into out. */
static inline void test_tmpdir(char *out, size_t cap, const char *name)
{
    const char *base = getenv("STRATA_TEST_TMP");
    snprintf(out, cap, "%s/%s-%d", base ? base : "/tmp", name, (int)getpid());
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%.2000s' && mkdir -p '%.2000s'", out, out);
    ASSERT_EQ(system(cmd), 0);
}

/* Removes every file directly in dir, then dir (test temp directories hold no subdirs). */
static inline void test_rmdir_flat(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[4400];
        snprintf(p, sizeof p, "%.4000s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Corpus replay: if dir/<stem>.expect exists (stem = name without its ".json"), msg must
 * contain its text (trailing newlines ignored). True when it does or there is no file;
 * otherwise prints both and returns false. */
static inline bool test_corpus_expect(const char *dir, const char *name, const char *msg)
{
    size_t nl = strlen(name);
    char path[8300];
    snprintf(path, sizeof path, "%.4000s/%.*s.expect", dir, (int)(nl > 5 ? nl - 5 : nl), name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return true;
    char expect[4096];
    size_t elen = fread(expect, 1, sizeof expect - 1, f);
    fclose(f);
    while (elen > 0 && (expect[elen - 1] == '\n' || expect[elen - 1] == '\r'))
        elen--;
    expect[elen] = 0;
    if (strstr(msg, expect))
        return true;
    fprintf(stderr, "%s: message \"%s\" lacks \"%s\"\n", name, msg, expect);
    return false;
}

/* Deterministic xorshift random numbers for tests. */
static inline uint64_t test_rand_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

#endif
