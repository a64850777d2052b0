#!/usr/bin/env bash
# Install/start every component (scripts/setup.sh), then run the whole test suite with all
# markers (docker, browser, azurite, postgres, kubernetes, slow, notebook) against real components:
# tests/ and the tutorial notebooks/ (nbval --nbval-lax: every cell must run without error),
# then `ruff check` and `lint-imports` (the layer contracts in .importlinter). Arguments replace the default paths and go to pytest
# (e.g. `bash scripts/test.sh tests/core -x`).
#
# Exit code: pytest's (5, "no tests collected", counts as a failure). ruff findings are
# reported; they fail the run only with MLMANAGE_STRICT_LINT=1. A broken import contract
# (lint-imports) always fails the run (exit 1 when pytest passed).
# Artifacts (git-ignored) in artifacts/: pytest.log, junit.xml, screenshots/, jupyterlab.log.
# Knobs: MLMANAGE_TEST_TIMEOUT (s per test, default 600), MLMANAGE_SKIP_SETUP=1.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
t0=$SECONDS

if [ "${MLMANAGE_SKIP_SETUP:-0}" != 1 ]; then
  bash scripts/setup.sh || { echo "test.sh: scripts/setup.sh failed" >&2; exit 1; }
fi
setup_s=$((SECONDS - t0))

. scripts/ci/recipes.sh
export MLMANAGE_BASE_IMAGE="$BASE_IMG"
export AZURE_STORAGE_CONNECTION_STRING; AZURE_STORAGE_CONNECTION_STRING=$(azurite_connection_string)
export MLMANAGE_TEST_POSTGRES_URL; MLMANAGE_TEST_POSTGRES_URL=${MLMANAGE_TEST_POSTGRES_URL:-$(postgres_url)}
export MLMANAGE_REQUIRE_COMPONENTS=1
export DOCKER_BUILDKIT=0
export PYTHONDONTWRITEBYTECODE=1

mkdir -p artifacts/screenshots
[ $# -gt 0 ] || set -- tests notebooks
t1=$SECONDS
.venv/bin/python -m pytest -ra --timeout="${MLMANAGE_TEST_TIMEOUT:-600}" \
    --nbval-lax --nbval-current-env --ignore-glob='tests/**/*.ipynb' \
    --junitxml=artifacts/junit.xml "$@" 2>&1 | tee artifacts/pytest.log
rc=${PIPESTATUS[0]}
test_s=$((SECONDS - t1))
[ "$rc" = 5 ] && echo "test.sh: pytest collected no tests: that is a failure" >&2

.venv/bin/ruff check --output-format=concise . >artifacts/ruff.log 2>&1
ruff_rc=$?
if [ "$ruff_rc" != 0 ]; then
  cat artifacts/ruff.log
  [ "${MLMANAGE_STRICT_LINT:-0}" = 1 ] && [ "$rc" = 0 ] && rc=1
fi

.venv/bin/lint-imports --no-cache >artifacts/lint-imports.log 2>&1
imports_rc=$?
if [ "$imports_rc" != 0 ]; then
  grep -vE '^[ ║╔╚╣╠└▶◀─┐│▲┘]' artifacts/lint-imports.log | sed '/^$/d'
  echo "test.sh: an import contract is broken (.importlinter; see artifacts/lint-imports.log)" >&2
  [ "$rc" = 0 ] && rc=1
fi

echo
echo "================================ summary ================================"
echo "setup:   ${setup_s} s"
echo "pytest:  ${test_s} s, exit $rc: $(grep -E '^=+ .*(passed|failed|error|skipped|no tests).* =+$' artifacts/pytest.log | tail -1 | tr -d '=' | sed 's/^ *//')"
echo "ruff:    $([ "$ruff_rc" = 0 ] && echo clean || echo "$(grep -cE '^[^ ]+:[0-9]+:[0-9]+: ' artifacts/ruff.log) finding(s), see artifacts/ruff.log")"
echo "imports: $([ "$imports_rc" = 0 ] && echo "contracts kept" || echo "BROKEN, see artifacts/lint-imports.log")"
echo "artifacts: $REPO/artifacts (pytest.log, junit.xml, screenshots/)"
echo "total:   $((SECONDS - t0)) s"
exit "$rc"
