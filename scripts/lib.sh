# Shared helpers for scripts/dev and scripts/test. Sourced, not executed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
TEMPORAL_VERSION="v1.5.1"
export TEMPORAL_CLI="$TOOLS/bin/temporal"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
warn() { printf '\033[1;33m==>\033[0m %s\n' "$*" >&2; }

# The Temporal CLI (dev server) is built from its Go module into .tools/bin.
# v1.5.1 is the last release `go install` can build (later ones carry replace directives).
ensure_temporal() {
  if [ -x "$TEMPORAL_CLI" ] && "$TEMPORAL_CLI" --version 2>/dev/null | grep -q "${TEMPORAL_VERSION#v}"; then
    return
  fi
  command -v go >/dev/null || { warn "Go is required to build the Temporal CLI (https://go.dev/dl)"; exit 1; }
  say "installing the Temporal CLI $TEMPORAL_VERSION into .tools/bin (go install; first time takes a few minutes)"
  mkdir -p "$TOOLS/bin"
  GOBIN="$TOOLS/bin" CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go install -ldflags "-X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_VERSION#v}" \
    "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_VERSION"
  say "Temporal CLI: $("$TEMPORAL_CLI" --version)"
}

# The deploy/ checker's tools: kubernetes-validate (PyPI; the Kubernetes JSON schemas ship in
# the package, so validating needs no download) and PyYAML, in .tools/deploy-venv.
KUBE_VALIDATE_VERSION="1.37.0"
DEPLOY_VENV="$TOOLS/deploy-venv"
ensure_kube_validate() {
  if "$DEPLOY_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('kubernetes-validate') == '$KUBE_VALIDATE_VERSION' else 1)" 2>/dev/null; then
    return
  fi
  say "installing kubernetes-validate $KUBE_VALIDATE_VERSION into .tools/deploy-venv (pip)"
  python3 -m venv "$DEPLOY_VENV"
  "$DEPLOY_VENV/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KUBE_VALIDATE_VERSION" pyyaml
}

# A throwaway PostgreSQL for the store tests: Debian's server package (installed if missing),
# a cluster under .cache/postgres, listening on 127.0.0.1:$CHARGELINK_TEST_PG_PORT (default 55432).
# Exports CHARGELINK_TEST_POSTGRES_URL; stop_postgres stops it.
ensure_postgres() {
  local pg_bin
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/pg_ctl" ]; then
    say "installing PostgreSQL (apt-get install postgresql)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  PG_PORT="${CHARGELINK_TEST_PG_PORT:-55432}"
  PG_DATA="$ROOT/.cache/postgres"
  PG_CTL="$pg_bin/pg_ctl"
  local as_pg=()
  if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root.
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    as_pg=(runuser -u postgres --)
  fi
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    say "creating a PostgreSQL cluster in .cache/postgres"
    mkdir -p "$PG_DATA"
    [ "$(id -u)" = 0 ] && chown postgres "$PG_DATA"
    "${as_pg[@]}" "$pg_bin/initdb" -D "$PG_DATA" -U chargelink --auth=trust >/dev/null
  fi
  if "${as_pg[@]}" "$PG_CTL" -D "$PG_DATA" status >/dev/null 2>&1; then
    # This checkout's cluster is already up (an earlier run): use it where it listens.
    PG_PORT=$(sed -n 4p "$PG_DATA/postmaster.pid")
    say "PostgreSQL already running on 127.0.0.1:$PG_PORT"
  else
    # Another checkout's cluster may hold the port: take the next free one rather than fail.
    while (: </dev/tcp/127.0.0.1/"$PG_PORT") 2>/dev/null; do PG_PORT=$((PG_PORT + 1)); done
    say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    "${as_pg[@]}" "$PG_CTL" -D "$PG_DATA" -l "$PG_DATA/server.log" -w \
      -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k /tmp" start >/dev/null
  fi
  PG_AS=("${as_pg[@]}")
  export CHARGELINK_TEST_POSTGRES_URL="postgres://chargelink@127.0.0.1:$PG_PORT/postgres"
}

stop_postgres() {
  if [ -n "${PG_CTL:-}" ]; then
    "${PG_AS[@]}" "$PG_CTL" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true
  fi
}

# The payment-page test drives Debian's chromium with playwright-core (no browser download).
ensure_browser() {
  if [ ! -x /usr/bin/chromium ]; then
    say "installing Debian's chromium for the payment-page browser test (apt-get install chromium)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  if ! command -v pdftoppm >/dev/null || ! command -v pdftotext >/dev/null; then
    say "installing Debian's poppler-utils for the receipt PDF test (apt-get install poppler-utils)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null
  fi
  if [ ! -d "$ROOT/tests/browser/node_modules/playwright-core" ]; then
    say "installing playwright-core into tests/browser (npm ci)"
    (cd "$ROOT/tests/browser" && npm ci --no-audit --no-fund --silent)
  fi
}
