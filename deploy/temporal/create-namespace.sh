#!/bin/sh
# The orchestrator's namespace with an explicit retention: how long Temporal keeps a closed
# workflow's history (the image's default is 1 day; the ledger in PostgreSQL keeps the facts
# for ever, README "Production"). Created if missing, its retention updated if it differs, so a
# new TEMPORAL_NAMESPACE_RETENTION applies at the next `docker compose up`.
# Fails (exit 1) when the server does not answer in time or refuses: the search-attribute job,
# the worker and the gateway wait for this job's success.
set -eu
: "${TEMPORAL_ADDRESS:?set TEMPORAL_ADDRESS}"
: "${TEMPORAL_NAMESPACE:?set TEMPORAL_NAMESPACE}"
: "${TEMPORAL_NAMESPACE_RETENTION:?set TEMPORAL_NAMESPACE_RETENTION (e.g. 30d)}"
ATTEMPTS="${TEMPORAL_WAIT_ATTEMPTS:-60}"
PAUSE="${TEMPORAL_WAIT_SECONDS:-2}"

attempt=1
until temporal operator cluster health >/dev/null 2>&1; do
  if [ "$attempt" -ge "$ATTEMPTS" ]; then
    echo "Temporal at $TEMPORAL_ADDRESS is not serving after $ATTEMPTS attempts" >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep "$PAUSE"
done

if temporal operator namespace describe --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
  temporal operator namespace update --namespace "$TEMPORAL_NAMESPACE" \
    --retention "$TEMPORAL_NAMESPACE_RETENTION"
  echo "namespace $TEMPORAL_NAMESPACE: retention $TEMPORAL_NAMESPACE_RETENTION"
else
  temporal operator namespace create --namespace "$TEMPORAL_NAMESPACE" \
    --retention "$TEMPORAL_NAMESPACE_RETENTION" \
    --description "contracting orchestrator"
  # A frontend answers "namespace not found" until its namespace cache has loaded the new
  # one (up to ~15 s, Temporal's docs): wait until this one serves it, then leave the others
  # their time, so the jobs after this one never meet a namespace that is not there yet.
  attempt=1
  until temporal workflow count --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; do
    if [ "$attempt" -ge "$ATTEMPTS" ]; then
      echo "namespace $TEMPORAL_NAMESPACE created but not served after $ATTEMPTS attempts" >&2
      exit 1
    fi
    attempt=$((attempt + 1))
    sleep 1
  done
  sleep "${TEMPORAL_NAMESPACE_SETTLE_SECONDS:-15}"
  echo "namespace $TEMPORAL_NAMESPACE created, retention $TEMPORAL_NAMESPACE_RETENTION"
fi
