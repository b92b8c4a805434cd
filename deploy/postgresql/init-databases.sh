#!/bin/sh
# Run once by the postgres image, on the first start of an empty data volume
# (/docker-entrypoint-initdb.d/): one role per user of the server, each with its own password.
#   temporal     owns the databases `temporal` and `temporal_visibility` (created by the schema
#                job with `temporal-sql-tool create`, hence CREATEDB)
#   contracting  owns the database `contracting` (the ledger; `contracting migrate` fills it)
# Changing a password later is an `ALTER ROLE ... PASSWORD` in psql: this script does not run again.
set -eu
: "${TEMPORAL_DB_PASSWORD:?set TEMPORAL_DB_PASSWORD}"
: "${CONTRACTING_DB_PASSWORD:?set CONTRACTING_DB_PASSWORD}"
psql --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  --set temporal_password="$TEMPORAL_DB_PASSWORD" \
  --set contracting_password="$CONTRACTING_DB_PASSWORD" <<'SQL'
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
CREATE ROLE contracting LOGIN PASSWORD :'contracting_password';
CREATE DATABASE contracting OWNER contracting;
SQL
