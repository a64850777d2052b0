#!/usr/bin/env bash
# Component recipes for CI and development machines (Debian 12, root, no container registry
# reachable). Adapted from proven recipes; every function is idempotent and fast when its
# component is already there. Source it:  . scripts/ci/recipes.sh; start_docker; ...
#
# Knobs (environment):
#   MLMANAGE_INFRA_DIR   work dir for logs, the Azurite install and the rootfs (default ~/.cache/mlmanage-infra)
#   MLMANAGE_BASE_IMAGE  tag of the local base image (default local/python:3.11-bookworm)
#   AZURITE_BLOB_PORT    Azurite's blob port (default 10000)
#   MLMANAGE_PG_PORT     port of the test PostgreSQL cluster "mlmanage" (default 54329)
#   FORCE=1              rebuild the base image even when it exists
#
# Timings measured on a 2-core Debian 12 machine are in scripts/ci/README.md.
INFRA=${MLMANAGE_INFRA_DIR:-${HOME:-/root}/.cache/mlmanage-infra}
BASE_IMG=${MLMANAGE_BASE_IMAGE:-local/python:3.11-bookworm}
AZURITE_BLOB_PORT=${AZURITE_BLOB_PORT:-10000}
PG_PORT=${MLMANAGE_PG_PORT:-54329}
# The test PostgreSQL role and database (local test server on 127.0.0.1 only; not a secret).
PG_USER=mlmanage PG_PASSWORD=mlmanage PG_DB=mlmanage_test
export DOCKER_BUILDKIT=0          # no buildx here: BuildKit fails with "buildx component is missing"

# Azurite's documented, public development account (devstoreaccount1); not a secret.
AZURITE_ACCOUNT_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
azurite_connection_string() {
  echo "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:${AZURITE_BLOB_PORT}/devstoreaccount1;"
}

log() { printf '[setup %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# _wait_for N CMD... : run CMD every 0.2 s until it succeeds, at most N times.
_wait_for() { local n=$1; shift; for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }

_APT_UPDATED=0
# apt_install PKG... : install the Debian packages that are not installed yet (one apt run).
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if [ "$_APT_UPDATED" = 0 ]; then apt-get update -qq; _APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The Debian mirror this machine's apt already uses (read from its sources).
_debian_mirror() {
  local u
  u=$(grep -hoE '^(URIs:|deb) +[a-z]+://[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
      | grep -v security | head -1 | awk '{print $2}')
  echo "${u%/}"
}

start_docker() {
  docker info >/dev/null 2>&1 && return 0
  command -v dockerd >/dev/null || apt_install docker.io
  mkdir -p "$INFRA"
  log "starting dockerd (log: $INFRA/dockerd.log)"
  setsid dockerd >"$INFRA/dockerd.log" 2>&1 </dev/null &
  _wait_for 150 docker info || { tail -30 "$INFRA/dockerd.log" >&2; return 1; }
}

# The test base image: Debian bookworm's python3 with a venv on PATH, built with debootstrap
# from the machine's Debian mirror (no container registry is reachable).
build_base_image() {
  [ "${FORCE:-0}" != 1 ] && docker image inspect "$BASE_IMG" >/dev/null 2>&1 && return 0
  command -v debootstrap >/dev/null || apt_install debootstrap
  local R="$INFRA/rootfs"; rm -rf "$R"; mkdir -p "$INFRA"
  log "building $BASE_IMG with debootstrap (log: $INFRA/debootstrap.log)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$R" "$(_debian_mirror)" >"$INFRA/debootstrap.log" 2>&1 \
      || { tail -30 "$INFRA/debootstrap.log" >&2; return 1; }
  # This machine's extra CAs (its egress re-signs TLS) so pip inside test images works here.
  # Test base image only: products must never bake such CAs in.
  cp /usr/local/share/ca-certificates/*.crt "$R/usr/local/share/ca-certificates/" 2>/dev/null || true
  chroot "$R" update-ca-certificates >/dev/null
  chroot "$R" python3 -m venv /opt/venv               # avoids PEP 668's externally-managed error
  chroot "$R" apt-get clean
  rm -rf "$R"/var/lib/apt/lists/* "$R"/usr/share/{doc,man,info,locale}/* "$R"/tmp/*
  find "$R" -name __pycache__ -prune -exec rm -rf {} +
  tar --numeric-owner -C "$R" -c . | docker import \
    --change 'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' - "$BASE_IMG" >/dev/null
  rm -rf "$R"
}

_azurite_up() { curl -s -o /dev/null "http://127.0.0.1:${AZURITE_BLOB_PORT}/devstoreaccount1?comp=list"; }

install_azurite() {
  [ -x "$INFRA/azurite/node_modules/.bin/azurite-blob" ] && return 0
  command -v npm >/dev/null || apt_install nodejs npm
  mkdir -p "$INFRA/azurite"
  log "npm install azurite@3 into $INFRA/azurite"
  (cd "$INFRA/azurite" && npm install --no-audit --no-fund --loglevel=error azurite@3 >/dev/null)
}

# In-memory Azurite blob service on 127.0.0.1:$AZURITE_BLOB_PORT (AZURITE_HOST=0.0.0.0 to
# reach it from containers). Its pid is in $INFRA/azurite/azurite.pid.
start_azurite() {
  local d="$INFRA/azurite" host=${AZURITE_HOST:-127.0.0.1}
  install_azurite
  _azurite_up && return 0
  log "starting Azurite on $host:$AZURITE_BLOB_PORT (log: $d/azurite.log)"
  (cd "$d" && setsid bash -c 'echo $$ > azurite.pid; exec node_modules/.bin/azurite-blob --blobHost "$0" --blobPort "$1" \
      --inMemoryPersistence --skipApiVersionCheck --disableTelemetry --loose' "$host" "$AZURITE_BLOB_PORT" >azurite.log 2>&1 </dev/null &)
  _wait_for 100 _azurite_up || { cat "$d/azurite.log" >&2; return 1; }
}

# SQLAlchemy URL of the test PostgreSQL (the role may CREATE DATABASE: tests make their own).
postgres_url() { echo "postgresql+psycopg://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${PG_PORT}/${PG_DB}"; }

_pg_version() { ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1; }
_postgres_up() { PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -Atqc 'select 1' >/dev/null 2>&1; }

# Debian's PostgreSQL: its own cluster "mlmanage" (pg_createcluster, so a machine's `main`
# cluster is left alone) on 127.0.0.1:$PG_PORT, fsync off (test data only), with the role
# $PG_USER (password auth, CREATEDB) owning the database $PG_DB. Log: pg_lsclusters shows it.
start_postgres() {
  _postgres_up && return 0
  [ -n "$(_pg_version)" ] || apt_install postgresql
  local v; v=$(_pg_version)
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}' | grep -qx "$v/mlmanage"; then
    log "creating PostgreSQL $v cluster mlmanage on 127.0.0.1:$PG_PORT"
    pg_createcluster --port="$PG_PORT" --start-conf=manual "$v" mlmanage \
        -- --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    printf '%s\n' "listen_addresses = '127.0.0.1'" "max_connections = 200" \
        "fsync = off" "synchronous_commit = off" "full_page_writes = off" \
        >"/etc/postgresql/$v/mlmanage/conf.d/mlmanage-test.conf"
  fi
  pg_lsclusters -h | awk '{print $1"/"$2" "$4}' | grep -qx "$v/mlmanage online" \
    || pg_ctlcluster "$v" mlmanage start || return 1
  _wait_for 100 runuser -u postgres -- psql -p "$PG_PORT" -Atqc 'select 1' || return 1
  runuser -u postgres -- psql -p "$PG_PORT" -v ON_ERROR_STOP=1 -q <<SQL || return 1
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${PG_USER}') THEN
    CREATE ROLE ${PG_USER} LOGIN CREATEDB PASSWORD '${PG_PASSWORD}';
  END IF;
END \$\$;
SELECT 'CREATE DATABASE ${PG_DB} OWNER ${PG_USER}'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${PG_DB}')\\gexec
SQL
  _wait_for 50 _postgres_up
}

stop_pidfile() { [ -f "$1" ] && kill "$(cat "$1")" 2>/dev/null; rm -f "$1"; }
