/* SPDX-License-Identifier: Apache-2.0 */
/*
 * settings.h — the settings of `tokend serve` and the admin commands, one
 * table for flags, TOKEND_* environment variables and the config file.
 * Precedence: flag > environment > config file > default.
 */
#ifndef TOKEND_CLI_SETTINGS_H
#define TOKEND_CLI_SETTINGS_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

enum cli_setting {
    SET_CONFIG = 0,
    SET_LISTEN,
    SET_ADMIN_LISTEN,
    SET_PUBLIC_METRICS,
    SET_DATA_DIR,
    SET_STORE,
    SET_MASTER_KEY_FILE,
    SET_ISSUER,
    SET_PUBLIC_URL,
    SET_TLS_CERT,
    SET_TLS_KEY,
    SET_DEV,
    SET_INSECURE_HTTP,
    SET_ALG,
    SET_ACCESS_TTL,
    SET_MAX_TTL,
    SET_ROTATE_EVERY,
    SET_LEEWAY,
    SET_SESSION_IDLE,
    SET_SESSION_MAX,
    SET_REFRESH_TTL,
    SET_CODE_TTL,
    SET_AUDIT_RETENTION,
    SET_SESSION_RETENTION,
    SET_REFRESH_GRACE,
    SET_THREADS,
    SET_MAX_CONNECTIONS,
    SET_EXPLAIN,
    SET_LOG,
    SET_LOG_SAMPLE_AUTH_OK,
    SET_MAX_PER_IP,
    SET_REQUEST_TIMEOUT,
    SET_TRUSTED_PROXY,
    SET_FORWARDED_HEADER,
    SET_AUTH_AUDIENCE,
    SET_LOGIN_WORKERS,
    SET_LOGIN_QUEUE,
    SET_STORE_PASSWORD_FILE,
    SET_JWKS_MAX_AGE,
    SET_MAX_STALE,
    SET_TRUST_ISSUER,
    SET_TRUST_CA_FILE,
    SET_ISSUER_CACHE_MIN,
    SET_ISSUER_CACHE_MAX,
    SET_ISSUER_KID_COOLDOWN,
    SET_ISSUER_MAX_STALE,
    SET_ISSUER_FETCH_WAIT,
    SET_ISSUER_FETCH_TIMEOUT,
    SET_ISSUER_FETCH_MAX_BYTES,
    SET_AUTH_CACHE_SIZE,
    SET_COUNT_
};

struct cli_setting_def {
    const char *flag; /* "listen" for --listen */
    const char *env;  /* "TOKEND_LISTEN" */
    const char *def;  /* default value, or NULL */
    int is_bool;      /* a flag without value */
    int admin;        /* also taken by the admin commands */
    const char *help;
};

extern const struct cli_setting_def cli_settings[SET_COUNT_];

/* A trusted issuer's section of the config file:
 *   [issuer https://tenant.auth0.com/]
 *   audience = https://orders.example
 * Keys are the names below; NULL when not given. */
enum cli_issuer_key {
    ISK_JWKS_URI = 0,
    ISK_JWKS_FILE,
    ISK_DISCOVERY,
    ISK_AUDIENCE,
    ISK_ALGORITHMS,
    ISK_REQUIRE_TYP,
    ISK_LEEWAY,
    ISK_REQUIRED_CLAIMS,
    ISK_SCOPE_CLAIM,
    ISK_SUBJECT_CLAIM,
    ISK_CA_FILE,
    ISK_COUNT_
};
extern const char *const cli_issuer_keys[ISK_COUNT_];

#define CLI_MAX_ISSUER_SECTIONS 32
struct cli_issuer_section {
    char *issuer;
    char *v[ISK_COUNT_];
    int line; /* where the section starts, for messages */
};

struct cli_settings {
    const char *v[SET_COUNT_];
    const char *source[SET_COUNT_]; /* "flag", "env", "config", "default" */
    char *owned[SET_COUNT_];        /* strings read from the config file, and repeated flags */
    struct cli_issuer_section issuers[CLI_MAX_ISSUER_SECTIONS];
    size_t n_issuers;
};

#define CLI_SETTING_OPT_BASE 1000

/* Appends the getopt_long options of the settings (val = BASE + setting)
 * to opts (admin: the admin subset); returns how many were added. */
size_t cli_settings_options(struct option *opts, size_t cap, int admin);
/* Records a flag that getopt_long returned (val >= BASE). */
void cli_settings_flag(struct cli_settings *s, int val, const char *arg);
/* Fills what flags left unset from the environment, then the config file
 * (--config / TOKEND_CONFIG; "key = value" lines, # comments, keys as the
 * flag names; an installed tokend reads TOKEND_SYSCONFDIR/tokend.conf when
 * neither names one), then defaults: --data-dir is "." run from a build
 * tree and TOKEND_STATEDIR installed, --store and --master-key-file are
 * files in it. Returns 0, or 2 with a message on stderr. */
int cli_settings_finish(struct cli_settings *s, const char *cmd_name);
/* 1 when this tokend is installed: it runs from a system bin directory or
 * the install prefix's (or was built with TOKEND_INSTALLED_DEFAULTS); 0
 * when it runs from a build tree. */
int cli_installed(void);
/* The system config file an installed tokend reads by default. */
const char *cli_system_config(void);
/* Prints the settings as a config file: those set by a flag, the
 * environment or a config file as `key = value`, every other one commented
 * out with its default, each under its help (`tokend serve --print-config`;
 * packaging/tokend.conf is its output for the installed defaults). */
void cli_settings_print_config(FILE *f, const struct cli_settings *s);
void cli_settings_free(struct cli_settings *s);
/* Prints the settings table (flag, env, default, help) for --help. */
void cli_settings_help(FILE *f, int admin);
int cli_setting_bool(const struct cli_settings *s, enum cli_setting k);

/* The settings one command reads: its flags (appended to opts like
 * cli_settings_options) and its --help table list only these. */
size_t cli_settings_options_of(struct option *opts, size_t cap, const enum cli_setting *which, size_t n);
void cli_settings_help_of(FILE *f, const enum cli_setting *which, size_t n);

/* The nearest of names[0..n) to s (a few edits away, for a typo), or NULL. */
const char *cli_nearest(const char *s, size_t s_len, const char *const *names, size_t n);
/* After getopt_long returned '?': when argv[optind - 1] is a --flag that
 * opts does not know, says on stderr which one was meant ("did you mean
 * --jwks?"), or that it is a setting this command does not use. */
void cli_option_hint(const char *cmd, const struct option *opts, int argc, char **argv);

#endif
