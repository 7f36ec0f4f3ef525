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
