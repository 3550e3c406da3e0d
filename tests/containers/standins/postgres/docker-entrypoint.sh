#!/bin/sh
# First start: initdb with POSTGRES_USER / POSTGRES_PASSWORD, then create POSTGRES_DB;
# password (scram-sha-256) auth over TCP, trust on the local socket; as the official image.
set -eu
[ "${1#-}" != "$1" ] && set -- postgres "$@"

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    user=${POSTGRES_USER:-postgres}
    database=${POSTGRES_DB:-$user}
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "error: database is uninitialized and POSTGRES_PASSWORD is not set" >&2
        exit 1
    fi
    pwfile=$(mktemp)
    printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of arguments
    initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    if [ "$database" != postgres ]; then
        pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
        echo 'CREATE DATABASE :"db"' \
            | psql -v ON_ERROR_STOP=1 -v db="$database" --username="$user" --dbname=postgres -q
        pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    fi
    echo "database initialized: user $user, database $database"
fi
exec "$@"
