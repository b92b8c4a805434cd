#!/bin/sh
# Temporal's schema in PostgreSQL, as Temporal's own compose files do it
# (temporalio/samples-server, compose/scripts/setup-postgres.sh): create the two databases,
# install the base schema, then apply every versioned update shipped with this admin-tools
# image. Each step is idempotent, so the job runs on every `docker compose up` and upgrades the
# schema when TEMPORAL_VERSION moves. Any failure stops the job, and the server that waits for it.
set -eu
: "${POSTGRES_SEEDS:?set POSTGRES_SEEDS}"
: "${POSTGRES_USER:?set POSTGRES_USER}"
: "${SQL_PASSWORD:?set SQL_PASSWORD}"   # read by temporal-sql-tool itself
PORT="${DB_PORT:-5432}"
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

sql_tool() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$PORT" -u "$POSTGRES_USER" "$@"
}

for database in temporal temporal_visibility; do
  case "$database" in
    temporal) versioned="$SCHEMA_DIR/temporal/versioned" ;;
    *) versioned="$SCHEMA_DIR/visibility/versioned" ;;
  esac
  echo "schema of $database"
  sql_tool --db "$database" create
  sql_tool --db "$database" setup-schema -v 0.0
  sql_tool --db "$database" update-schema -d "$versioned"
done
echo "Temporal schema ready"
