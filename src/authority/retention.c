/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retention.c — what the store keeps, and for how long (issue 13 section
 * 3): every table that grows with traffic is purged here, in batches.
 *
 * Rules:
 *  - Only what can no longer be used goes, or a record past its
 *    retention: a purge never makes a credential valid again. Codes and
 *    revocations go when they expire (a revocation lasts until its token
 *    would have expired anyway); refresh tokens when their family has
 *    ended, expired or revoked, plus refresh_grace (so that presenting one
 *    soon after is still explained as expired or revoked, not unknown);
 *    sessions session_retention after they ended; audit events after
 *    audit_retention.
 *  - A batch is TKA_PURGE_BATCH rows in one short transaction; between
 *    batches the store is free for a pause (SQLite has one writer, and the
 *    request threads share its connection). A pass stops after
 *    TKA_PURGE_BUDGET_MS; tka_maintain then runs the next one a second
 *    later instead of a minute, and the kinds take turns first, so a
 *    backlog in one table (a first start on an old store) does not starve
 *    the others.
 *  - Several instances on one PostgreSQL purge concurrently: each batch
 *    deletes what it finds, and a row deleted by another is simply not
 *    counted.
 */
#include <string.h>
#include <time.h>

#include "authority/internal.h"

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

enum { N_KINDS = 7 };
static const tks_purge_kind kinds[N_KINDS] = {
    TKS_PURGE_CODES,           TKS_PURGE_REVOCATIONS, TKS_PURGE_ATTEMPTS, TKS_PURGE_REFRESH,
    TKS_PURGE_REFRESH_REVOKED, TKS_PURGE_SESSIONS,    TKS_PURGE_AUDIT,
};

/* Families revoked this long before the last complete pass are looked at
 * again: revocations committed late by another instance, or a clock a bit
 * behind, are not missed. */
#define REVOKED_OVERLAP 3600

/* The purge of one kind at `now`; 0 when it is off (retention 0). */
static int purge_of(const tka_authority *a, tks_purge_kind k, int64_t now, tks_purge *p)
{
    memset(p, 0, sizeof *p);
    p->kind = k;
    switch (k) {
    case TKS_PURGE_CODES:
    case TKS_PURGE_REVOCATIONS:
        p->before = now;
        return 1;
    case TKS_PURGE_ATTEMPTS:
        p->before = now;
        p->window = a->cfg.fail_window;
        return 1;
    case TKS_PURGE_REFRESH:
        p->before = now - a->cfg.refresh_grace;
        return 1;
    case TKS_PURGE_REFRESH_REVOKED:
        p->from = a->purge_revoked_from;
        p->before = now - a->cfg.refresh_grace;
        return p->from < p->before;
    case TKS_PURGE_SESSIONS:
        p->before = now - a->cfg.session_retention;
        p->idle = a->cfg.session_idle;
        p->max_age = a->cfg.session_max;
        return a->cfg.session_retention > 0;
    case TKS_PURGE_AUDIT:
        p->before = now - a->cfg.audit_retention;
        return a->cfg.audit_retention > 0;
    }
    return 0;
}

int tka_purge(tka_authority *a, int64_t now)
{
    uint64_t start = mono_ms();
    int failed = 0;
    int left = 0;
    int first = a->purge_next;
    for (int i = 0; i < N_KINDS && !left; i++) {
        int ki = (first + i) % N_KINDS;
        tks_purge p;
        if (!purge_of(a, kinds[ki], now, &p)) {
            continue;
        }
        for (;;) {
            size_t n = 0;
            if (tks_purge_batch(a->store, &p, TKA_PURGE_BATCH, &n) != TKS_OK) {
                failed = 1;
                break;
            }
            if (n < TKA_PURGE_BATCH) {
                if (kinds[ki] == TKS_PURGE_REFRESH_REVOKED) {
                    a->purge_revoked_from = p.before - REVOKED_OVERLAP;
                }
                break; /* this kind is done */
            }
            if (mono_ms() - start >= TKA_PURGE_BUDGET_MS) {
                left = 1;
                a->purge_next = ki; /* the next pass starts where this one stopped */
                break;
            }
            struct timespec pause = {0, TKA_PURGE_PAUSE_MS * 1000L * 1000L};
            nanosleep(&pause, NULL);
        }
    }
    if (!left) {
        a->purge_next = (first + 1) % N_KINDS;
    }
    return failed ? -1 : left;
}
