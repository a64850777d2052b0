#!/usr/bin/env bash
# Install and start everything the test suite needs; idempotent, and fast (a few seconds)
# when everything is already there:
#   - Debian packages: docker.io, debootstrap, chromium, chromium-driver, wrk, curl
#   - the JupyterLab extension: `npm ci` in labextension/ (npm cache in ~/.cache/mlmanage-npm;
#     re-run only when package-lock.json changes), built into mlmanage_jupyter/labextension/
#     (re-built only when its sources change)
#   - .venv with `pip install -e '.[all,test]'` (re-run only when pyproject.toml changes), and
#     the built labextension linked into .venv (`jupyter labextension develop`)
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

# labextension/ -> mlmanage_jupyter/labextension/ (TypeScript + @jupyterlab/builder; Node only)
setup_labextension() {
  local lock stamp=labextension/node_modules/.mlmanage-ci-stamp out=mlmanage_jupyter/labextension want
  local built=labextension/node_modules/.mlmanage-build-stamp
  lock=$(sha256sum labextension/package-lock.json | cut -c1-64)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock" ]; then
    log "npm ci in labextension/"
    (cd labextension && npm ci --no-audit --no-fund --loglevel=error --prefer-offline \
        --cache "${HOME:-/root}/.cache/mlmanage-npm" >/dev/null)
    echo "$lock" >"$stamp"
  fi
  want=$(cd labextension && cat package.json tsconfig.json build-labextension.js src/* style/* | sha256sum | cut -c1-64)
  [ -f "$out/package.json" ] && [ -f "$built" ] && [ "$(cat "$built")" = "$want" ] && return 0
  log "building the JupyterLab extension into $out"
  (cd labextension && npm run --silent build >/dev/null)
  echo "$want" >"$built"
}

# The editable install's JupyterLab finds the extension through a link to the build output
# (so a rebuild needs no reinstall); pip's editable install may have put a copy there.
link_labextension() {
  local dest=.venv/share/jupyter/labextensions/mlmanage-jupyter
  [ -L "$dest" ] && [ "$(readlink -f "$dest")" = "$(readlink -f mlmanage_jupyter/labextension)" ] && return 0
  log "jupyter labextension develop --overwrite ."
  .venv/bin/jupyter labextension develop --overwrite . >/dev/null 2>&1 \
    || { rm -rf "$dest"; mkdir -p "$(dirname "$dest")"; ln -s "$PWD/mlmanage_jupyter/labextension" "$dest"; }
}

step setup_packages
step setup_labextension
step setup_venv
step link_labextension
step start_docker
step build_base_image
step start_azurite
step start_postgres
log "setup complete in $((SECONDS - t0)) s: docker $(docker version -f '{{.Server.Version}}'), image $BASE_IMG, Azurite on :$AZURITE_BLOB_PORT, PostgreSQL on :$PG_PORT"
