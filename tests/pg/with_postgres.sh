#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# with_postgres.sh CMD [ARGS...]: runs CMD against a throwaway PostgreSQL 15
# started for it and stopped after it (tests/e2e/pgserver.py does the work;
# see tests/pg/README.md). CMD sees TOKEND_TEST_PG_URL and
# TOKEND_TEST_PG_ADMIN; the exit status is CMD's.
here=$(dirname "$0")
exec /usr/bin/python3 "$here/../e2e/pgserver.py" --run "$@"
