/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h — the `tokend` command: sub-commands and their shared helpers.
 * Exit statuses are part of the interface: 0 valid / done, 1 the token is
 * not valid (or the operation failed on its input), 2 usage or setup error.
 */
#ifndef TOKEND_CLI_H
#define TOKEND_CLI_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "tokend/tokend.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_INVALID = 1, CLI_EXIT_USAGE = 2 };

/* Largest input read from stdin or a token file: big enough to diagnose an
 * oversized token ("it is 1048576 bytes"), small enough to stay cheap. */
#define CLI_MAX_INPUT (16u * 1024u * 1024u)
/* Largest key, secret or JWKS file. */
#define CLI_MAX_KEY_FILE TK_LIMIT_JWK_LEN

int cli_inspect(int argc, char **argv);
int cli_keygen(int argc, char **argv);
int cli_sign(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_client(int argc, char **argv);
int cli_keys(int argc, char **argv);
int cli_revoke(int argc, char **argv);
int cli_user(int argc, char **argv);

/* Reads a whole file, at most `max` bytes (more is an error), NUL-terminated.
 * Returns 0, or -1 with a message in err. *out is owned (cli_free_secret). */
int cli_read_file(const char *path, size_t max, char **out, size_t *len, char *err, size_t err_cap);
/* Reads stdin to EOF, at most `max` bytes; *truncated is set when more came. */
int cli_read_stdin(size_t max, char **out, size_t *len, int *truncated);
/* Wipes and frees. */
void cli_free_secret(char *p, size_t n);
/* "15m", "1h", "30s", "2d", "90" (seconds) → seconds. Returns 0 or -1. */
int cli_parse_duration(const char *s, int64_t *out);
/* Decimal int64. Returns 0 or -1. */
int cli_parse_int64(const char *s, int64_t *out);
int64_t cli_now(void);
/* Returns 1 when the file's mode lets group or others read it. */
int cli_file_too_open(const char *path, unsigned *mode);
/* Loads a key file (PEM, JWK or JWKS) into ks. `alg_hint` binds unbound keys
 * whose type allows it; `kid_hint` (may be NULL) names a single key that has
 * no kid of its own: the user said "this is the key". A key set's unusable
 * keys are skipped and named in note ("key #2 (kid 'x'): why"). Returns 0;
 * -1 with a message in err (the one check a refused key failed, with its
 * numbers); or 1 when the file is a key set with no usable key (err says
 * which keys and why; nothing was added). */
int cli_load_key_file(const char *path, tk_alg alg_hint, const char *kid_hint, tk_keyset *ks, char *note,
                      size_t note_cap, char *err, size_t err_cap);
/* Binds an explicitly given key to the token's alg and kid where the key
 * names neither (within its family), and says so in note. */
void cli_adopt_key(tk_key *k, tk_alg alg_hint, const char *kid_hint, const char *what, char *note, size_t note_cap);
/* A tk_result as an explanation of what was wrong with key material (when
 * no tk_key_error says more). */
const char *cli_key_error(tk_result r);
/* "key #2 (kid 'x')", or "key #2" without a kid: a key of a set by its
 * position (index from 0, shown from 1) and kid, printable. */
void cli_key_name(char *buf, size_t cap, size_t index, const char *kid);
/* -1 with err when a --secret-file holds a JWK, a JWKS or a PEM key (which
 * go to --key or --jwks), else 0. */
int cli_secret_file_kind(const char *buf, size_t n, const char *path, char *err, size_t err_cap);
/* Prints o as indented ASCII JSON on stdout and releases it. */
void cli_print_json(json_t *o);
/* Base64url of n random bytes into buf. Returns 0 or -1. */
int cli_random_id(size_t n, char *buf, size_t cap);

#endif
