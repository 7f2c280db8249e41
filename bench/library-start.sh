#!/usr/bin/env bash
# Library start time (issue 13): `import('berth')` + `await openBerth()` next to a bare
# `node -e 0`, interleaved in one run, once with NODE_EXTRA_CA_CERTS unset (as on a user's
# machine) and once set. Target: ≤ 1.3×. Rooms load on first use, so this should stay near 1.0×.
# usage: bash bench/library-start.sh [ROUNDS]   (after npm run build)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-40}
root="${TMPDIR:-/tmp}/berth-bench-library-start"
lib="import('./dist/index.js').then((m) => m.openBerth({ root: '$root' }))"
ca=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
ns() { date +%s%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {printf "%.0f\n", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
measure() { # $1: label; the environment is already set by the caller
  local -a a=() b=()
  local t
  for ((i = 0; i < rounds; i++)); do
    t=$(ns); node -e 0; a+=($(( $(ns) - t )))
    t=$(ns); node -e "$lib"; b+=($(( $(ns) - t )))
  done
  local ma mb
  ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
  printf '%-50s %8.1f\n' "node -e 0 ($1)" "$(echo "$ma/1000000" | bc -l)"
  printf '%-50s %8.1f   %.2fx\n' "import + openBerth() ($1)" "$(echo "$mb/1000000" | bc -l)" "$(echo "$mb/$ma" | bc -l)"
}
printf '%-50s %8s\n' "median of $rounds runs" "ms"
(unset NODE_EXTRA_CA_CERTS; measure "NODE_EXTRA_CA_CERTS unset")
(export NODE_EXTRA_CA_CERTS="$ca"; measure "NODE_EXTRA_CA_CERTS set")
