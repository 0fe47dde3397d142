#!/usr/bin/env bash
# `make test`: every test. The end-to-end tests (real calls on the sandbox PBX: mostly waiting
# on the calls' own seconds) run beside the rest (unit, integration, browser: mostly CPU), each
# in its own pytest process and temporary directory; the outputs are printed one after the other
# and the run fails if either fails.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
"$PY" -m pytest -q -ra tests/e2e --basetemp="$LOGS/e2e-tmp" "$@" >"$LOGS/e2e.log" 2>&1 &
E2E=$!
"$PY" -m pytest -q -ra tests/unit tests/integration tests/browser --basetemp="$LOGS/rest-tmp" "$@" \
    >"$LOGS/rest.log" 2>&1 &
REST=$!
wait "$REST"; rest=$?
wait "$E2E"; e2e=$?
echo "== unit, integration, browser (exit $rest)"; cat "$LOGS/rest.log"
echo "== end-to-end on the sandbox PBX (exit $e2e)"; cat "$LOGS/e2e.log"
[ "$rest" -eq 0 ] && [ "$e2e" -eq 0 ]
