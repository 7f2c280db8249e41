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
