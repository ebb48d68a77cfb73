/* SPDX-License-Identifier: Apache-2.0 */
/*
 * serve.h — helpers shared by `tokend serve` and the admin commands.
 */
#ifndef TOKEND_CLI_SERVE_H
#define TOKEND_CLI_SERVE_H

#include <stddef.h>
#include <time.h>

#include "authority/authority.h"
#include "cli/settings.h"
#include "store/store.h"

/* devcert.c: makes (or reuses) DIR/tokend-dev.crt and .key; fingerprint is
 * the certificate's SHA-256 in AB:CD:.. form. */
int serve_dev_cert(const char *dir, char *cert_path, size_t cert_cap, char *key_path, size_t key_cap, char *fingerprint,
                   size_t fp_cap, int *created, char *err, size_t err_cap);

/* admin.c: opens the store named by the settings (--store, with
 * --store-password-file) with `pool` PostgreSQL connections at most (0:
 * the default). Prints why on failure, with the URL's password hidden.
 * Returns 0 or 2. */
int cli_open_store(const struct cli_settings *s, const char *cmd, unsigned pool, tks_store **store);
/* admin.c: opens the store (unless *store is open already; initialise it
 * to NULL), reads the master key (creating it when `create_master`), opens
 * the authority. Prints why on failure (then *store is closed and NULL). */
int cli_open_authority(const struct cli_settings *s, const char *cmd, int create_master, const char *issuer,
                       tks_store **store, tka_authority **auth);
/* Fills an authority config from the settings. Returns 0 or 2 (printed). */
int cli_authority_config(const struct cli_settings *s, const char *cmd, tka_config *c);

#endif
