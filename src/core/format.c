/* SPDX-License-Identifier: Apache-2.0 */
/*
 * format.c — human renderings of times and durations for verdict details
 * ("expired 3m12s ago at 2026-11-21T09:14:03Z"). Pure arithmetic: no
 * locale, no time zone, no libc time functions (gmtime is not reentrant and
 * its range is platform-defined).
 */
#include <stdio.h>

#include "core/internal.h"

/* Days since 1970-01-01 to civil date (Howard Hinnant's algorithm). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    uint64_t doe = (uint64_t)(z - era * 146097);
    uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    uint64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yy + (*m <= 2);
}

void tk_format_time(int64_t t, char *buf, size_t cap)
{
    if (!buf || cap == 0) {
        return;
    }
    if (t < 0 || t > TK_LIMIT_NUMERICDATE_MAX) {
        snprintf(buf, cap, "out of range");
        return;
    }
    int64_t days = t / 86400;
    int64_t rem = t % 86400;
    int64_t y;
    unsigned m;
    unsigned d;
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, cap, "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ", (long long)y, m, d, (long long)(rem / 3600),
             (long long)(rem / 60 % 60), (long long)(rem % 60));
}

void tk_format_duration(int64_t secs, char *buf, size_t cap)
{
    if (!buf || cap == 0) {
        return;
    }
    uint64_t s = secs < 0 ? (uint64_t)0 - (uint64_t)secs : (uint64_t)secs;
    uint64_t d = s / 86400;
    uint64_t h = s / 3600 % 24;
    uint64_t mi = s / 60 % 60;
    uint64_t se = s % 60;
    if (d > 0) {
        if (h > 0) {
            snprintf(buf, cap, "%llud%lluh", (unsigned long long)d, (unsigned long long)h);
        } else {
            snprintf(buf, cap, "%llud", (unsigned long long)d);
        }
    } else if (h > 0) {
        if (mi > 0) {
            snprintf(buf, cap, "%lluh%llum", (unsigned long long)h, (unsigned long long)mi);
        } else {
            snprintf(buf, cap, "%lluh", (unsigned long long)h);
        }
    } else if (mi > 0) {
        if (se > 0) {
            snprintf(buf, cap, "%llum%llus", (unsigned long long)mi, (unsigned long long)se);
        } else {
            snprintf(buf, cap, "%llum", (unsigned long long)mi);
        }
    } else {
        snprintf(buf, cap, "%llus", (unsigned long long)se);
    }
}
