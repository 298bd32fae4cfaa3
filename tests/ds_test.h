/* ds_test.h - the minimal test harness every tests/test_*.c uses.

   A test program lists its cases with DS_TEST_MAIN(...) and prints one line per case:
       PASS name   |   FAIL name: reason   |   SKIP name: reason
   tests/run.sh runs every program and sums these lines into "N passed, N failed, N skipped". */
#ifndef DS_TEST_H
#define DS_TEST_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

typedef struct ds_test_ctx {
    int failed;
    int skipped;
    char reason[2048];
} ds_test_ctx;

typedef void (*ds_test_fn)(ds_test_ctx *t);
typedef struct ds_test_case {
    const char *name;
    ds_test_fn fn;
} ds_test_case;

#define DS_CHECK(t, cond, ...)                                                                  \
    do {                                                                                        \
        if (!(cond) && !(t)->failed) {                                                          \
            int n_ = snprintf((t)->reason, sizeof (t)->reason, "%s:%d: ", __FILE__, __LINE__); \
            snprintf((t)->reason + n_, sizeof (t)->reason - (size_t)n_, __VA_ARGS__);           \
            (t)->failed = 1;                                                                    \
        }                                                                                       \
    } while (0)
/* check and leave the test function at the first failure */
#define DS_REQUIRE(t, cond, ...)            \
    do {                                    \
        DS_CHECK(t, cond, __VA_ARGS__);     \
        if ((t)->failed) return;            \
    } while (0)
#define DS_SKIP(t, ...)                                              \
    do {                                                             \
        snprintf((t)->reason, sizeof (t)->reason, __VA_ARGS__);      \
        (t)->skipped = 1;                                            \
        return;                                                      \
    } while (0)

/* Runs the cases whose name contains argv[1] (all when absent). Exit status 1 if any failed. */
static inline int ds_test_run(const ds_test_case *cases, int n, int argc, char **argv) {
    int i, bad = 0;
    for (i = 0; i < n; i++) {
        ds_test_ctx t;
        if (argc > 1 && !strstr(cases[i].name, argv[1])) continue;
        memset(&t, 0, sizeof t);
        cases[i].fn(&t);
        if (t.failed) {
            printf("FAIL %s: %s\n", cases[i].name, t.reason);
            bad = 1;
        } else if (t.skipped) {
            printf("SKIP %s: %s\n", cases[i].name, t.reason);
        } else {
            printf("PASS %s\n", cases[i].name);
        }
        fflush(stdout);
    }
    return bad;
}
#define DS_TEST_MAIN(...)                                                              \
    int main(int argc, char **argv) {                                                  \
        static const ds_test_case cases_[] = {__VA_ARGS__};                            \
        return ds_test_run(cases_, (int)(sizeof cases_ / sizeof cases_[0]), argc, argv); \
    }
#define DS_T(fn) {#fn, fn}

/* Path of a file the tests need, from an environment variable; NULL when unset or missing. */
static inline const char *ds_test_env_file(const char *var) {
    const char *p = getenv(var);
    FILE *f;
    if (!p || !*p) return NULL;
    f = fopen(p, "rb");
    if (!f) return NULL;
    fclose(f);
    return p;
}
#endif
