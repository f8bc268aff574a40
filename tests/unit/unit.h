/* unit.h - the smallest test harness that asserts exact values and prints the
 * closing "N passed, M failed" line that CI reads.
 *
 * A test is a void function; UNIT_RUN runs it and counts it failed if any check in it
 * failed. Checks print file:line and both values, and go on, so one run shows every
 * broken expectation. */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed, unit_cur_failed;

#define UNIT_FAIL_(...)                                                        \
    do {                                                                       \
        printf("FAIL %s:%d: ", __FILE__, __LINE__);                            \
        printf(__VA_ARGS__);                                                   \
        printf("\n");                                                          \
        unit_cur_failed = 1;                                                   \
    } while (0)

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) UNIT_FAIL_("%s", #cond);                                  \
    } while (0)

#define CHECK_INT(got, want)                                                   \
    do {                                                                       \
        long long g_ = (long long)(got), w_ = (long long)(want);               \
        if (g_ != w_) UNIT_FAIL_("%s == %lld, want %lld", #got, g_, w_);       \
    } while (0)

#define CHECK_STR(got, want)                                                   \
    do {                                                                       \
        const char *g_ = (got), *w_ = (want);                                  \
        if (!g_ || !w_ || strcmp(g_, w_) != 0)                                 \
            UNIT_FAIL_("%s == \"%s\", want \"%s\"", #got, g_ ? g_ : "(null)",  \
                       w_ ? w_ : "(null)");                                    \
    } while (0)

#define UNIT_RUN(fn)                                                           \
    do {                                                                       \
        unit_cur_failed = 0;                                                   \
        fn();                                                                  \
        if (unit_cur_failed) {                                                 \
            unit_failed++;                                                     \
            printf("not ok %s\n", #fn);                                        \
        } else {                                                               \
            unit_passed++;                                                     \
            printf("ok %s\n", #fn);                                            \
        }                                                                      \
    } while (0)

static inline int unit_report(void)
{
    printf("%d passed, %d failed\n", unit_passed, unit_failed);
    return unit_failed ? 1 : 0;
}

#endif
