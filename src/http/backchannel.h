/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backchannel.h — OpenID Connect Back-Channel Logout 1.0, the sending side:
 * when a sign-in ends here (tka_set_signout_hook), every client that was
 * issued a code in it and registered a backchannel_logout_uri is sent a
 * logout token (section 2.5), from a thread of its own, with retries.
 *
 * Deliveries wait in memory: a process that stops drops those not yet
 * made (the log says how many). Each tokend sends for the sign-ins it
 * ended, so several instances on one store never send one twice.
 */
#ifndef TOKEND_HTTP_BACKCHANNEL_H
#define TOKEND_HTTP_BACKCHANNEL_H

#include <stdint.h>

#include "authority/authority.h"
#include "store/store.h"

typedef struct tkh_bcl tkh_bcl;

typedef struct tkh_bcl_config {
    const char *ca_file; /* CA file besides the system's, or NULL */
    long timeout_ms;     /* one POST (5000) */
    unsigned attempts;   /* per delivery, the first included (6: after 1, 2, 4, 8, 16 s) */
    unsigned queue_max;  /* deliveries waiting at most (1024); more are dropped, counted as failed */
    unsigned senders;    /* threads sending at once (4): a receiver that hangs holds one of them */
    void (*log)(void *ud, const char *level, const char *msg);
    void *log_ud;
} tkh_bcl_config;

void tkh_bcl_config_defaults(tkh_bcl_config *c);
/* Starts the sender and sets itself as the authority's sign-out hook.
 * Borrows a and store until tkh_bcl_close. 0 or -1. */
int tkh_bcl_open(tka_authority *a, tks_store *store, const tkh_bcl_config *cfg, tkh_bcl **out);
/* Waits until nothing is left to send or max_ms passed; returns how many
 * deliveries are still waiting. */
unsigned tkh_bcl_drain(tkh_bcl *b, int64_t max_ms);
/* Unsets the hook, stops the thread; what was not sent is dropped. */
void tkh_bcl_close(tkh_bcl *b);

typedef struct tkh_bcl_counters {
    uint64_t delivered; /* answered 2xx */
    uint64_t retried;   /* attempts that failed and will be made again */
    uint64_t failed;    /* given up after every attempt, or dropped */
    uint64_t pending;   /* waiting now */
} tkh_bcl_counters;
void tkh_bcl_counters_get(tkh_bcl *b, tkh_bcl_counters *out);

#endif
