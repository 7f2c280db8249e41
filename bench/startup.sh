#!/usr/bin/env bash
# berth --version start time next to a bare `node -e 0`, interleaved in one run (issue 2: ≤ 1.5×).
# usage: bash bench/startup.sh [ROUNDS]   (after npm run build)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-40}
ns() { date +%s%N; }
declare -a a b c
for ((i = 0; i < rounds; i++)); do
  t=$(ns); node -e 0; a+=($(( $(ns) - t )))
  t=$(ns); node bin/berth.js --version >/dev/null; b+=($(( $(ns) - t )))
  t=$(ns); node bin/berth.js images --root "${TMPDIR:-/tmp}/berth-bench-startup" >/dev/null; c+=($(( $(ns) - t )))
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {printf "%.0f\n", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
ma=$(median "${a[@]}"); mb=$(median "${b[@]}"); mc=$(median "${c[@]}")
printf '%-28s %8s\n' "command (median of $rounds)" "ms"
printf '%-28s %8.1f\n' "node -e 0" "$(echo "$ma/1000000" | bc -l)"
printf '%-28s %8.1f   %.2fx\n' "berth --version" "$(echo "$mb/1000000" | bc -l)" "$(echo "$mb/$ma" | bc -l)"
printf '%-28s %8.1f   %.2fx\n' "berth images (empty store)" "$(echo "$mc/1000000" | bc -l)" "$(echo "$mc/$ma" | bc -l)"
