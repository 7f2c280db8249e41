#!/usr/bin/env bash
# Old build against new build (or any commands) alternated in one run: each round runs every
# command once, in turn; prints the median wall time of each. The A/B figures in closing notes
# come from this. An old build to compare with:
#   mkdir -p /tmp/old && git archive COMMIT | tar -x -C /tmp/old && ln -s "$PWD/node_modules" /tmp/old/ &&
#     mkdir -p /tmp/old/native/build && cp -a native/build/Release /tmp/old/native/build/ && (cd /tmp/old && npx tsc -p .)
#   (the native addon is built by npm install, not kept in git: an old tree without it mounts and
#   mknods through the slower process fallback, and every A/B on `run` comes out wrong)
#   bash bench/ab.sh 21 "node /tmp/old/bin/berth.js --root R images" "node bin/berth.js --root R images"
# Commands run through eval (a `;` list is one command); their output is discarded.
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: bash bench/ab.sh ROUNDS CMD [CMD...]" >&2; exit 2; }
rounds=$1; shift
declare -a T=()
for ((i = 0; i < rounds; i++)); do
  k=0
  for c in "$@"; do
    s=$(date +%s%N); eval "$c" >/dev/null 2>&1; T[k]+="$((($(date +%s%N) - s) / 10000)) "; k=$((k + 1))
  done
done
k=0
for c in "$@"; do
  m=$(printf '%s\n' ${T[k]} | sort -n | awk '{v[NR]=$1} END {printf "%.2f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) / 100}')
  printf '%9s ms  %s\n' "$m" "$c"; k=$((k + 1))
done
