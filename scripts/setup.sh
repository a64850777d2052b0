#!/usr/bin/env bash
# Install and start everything the test suite needs; idempotent, and fast (a few seconds)
# when everything is already there:
#   - Debian packages: docker.io, debootstrap, chromium, chromium-driver, wrk, curl
#   - .venv with `pip install -e '.[all,test]'` (re-run only when pyproject.toml changes)
#   - the Docker Engine (dockerd), and the local base image $MLMANAGE_BASE_IMAGE
#     (local/python:3.11-bookworm, built with debootstrap: no registry can be pulled from)
#   - Azurite (npm package `azurite`), the Azure Blob Storage emulator, on 127.0.0.1:10000
#   - PostgreSQL (Debian's `postgresql`): a cluster "mlmanage" on 127.0.0.1:54329 with the test
#     role/database of scripts/ci/recipes.sh (`postgres_url` prints its SQLAlchemy URL)
# Usage: bash scripts/setup.sh     (as root; see scripts/ci/recipes.sh for the knobs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/ci/recipes.sh

t0=$SECONDS
step() { local t=$SECONDS; "$@"; log "$1 done in $((SECONDS - t)) s"; }

setup_packages() {
  apt_install ca-certificates curl git docker.io debootstrap chromium chromium-driver fonts-liberation fonts-dejavu-core wrk postgresql
  command -v npm >/dev/null || apt_install nodejs npm
}

setup_venv() {
  local py=${PYTHON:-python3} stamp=.venv/.mlmanage-setup-stamp want
  [ -x .venv/bin/python ] || { log "creating .venv with $py"; "$py" -m venv .venv; }
  want="$(sha256sum pyproject.toml | cut -c1-64) $(.venv/bin/python -c 'import sys; print(sys.version.split()[0])')"
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
  log "pip install -e '.[all,test]'"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[all,test]'
  echo "$want" >"$stamp"
}

step setup_packages
step setup_venv
step start_docker
step build_base_image
step start_azurite
step start_postgres
log "setup complete in $((SECONDS - t0)) s: docker $(docker version -f '{{.Server.Version}}'), image $BASE_IMG, Azurite on :$AZURITE_BLOB_PORT, PostgreSQL on :$PG_PORT"
