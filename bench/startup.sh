#!/usr/bin/env bash
# Start time of the hot verbs next to a bare `node -e 0` (issues 2, 8 and 13), interleaved in one
# run, once with NODE_EXTRA_CA_CERTS unset (as on a user's machine) and once set.
# Targets (issue 13): images, ps, inspect IMG on a store with 50 images ≤ 1.3×; --help ≤ 1.5×;
# `import { openBerth } from 'berth-oci'` + `await openBerth()` ≤ 1.3×. Each verb's floor row (its
# modules loaded, no work) shows how much of its time is node's ESM loader. Medians; the machine's load
# makes single runs noisy, so use many rounds and read the ratios, not the milliseconds.
# usage: bash bench/startup.sh [ROUNDS] [IMAGES]   (after npm run build; IMAGES default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-40}
nimages=${2:-50}
root="${TMPDIR:-/tmp}/berth-bench-startup-$nimages"
ca=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
berth=(node bin/berth.js --root "$root")

# The store: NIMAGES distinct single-layer images (one small file each), made once and reused.
if [ ! -f "$root/.bench-$nimages" ]; then
  rm -rf "$root"
  work=$(mktemp -d)
  for ((n = 0; n < nimages; n++)); do
    mkdir -p "$work/r$n/etc" && echo "image $n" >"$work/r$n/etc/bench" && tar -C "$work/r$n" -cf "$work/r$n.tar" .
    "${berth[@]}" import "$work/r$n.tar" "bench/img$n:latest" >/dev/null 2>&1
  done
  rm -rf "$work"
  touch "$root/.bench-$nimages"
fi

lib="import('./dist/index.js').then((m) => m.openBerth({ root: '$root' }))"
# The "floor" rows load what the verb loads and do nothing (bench/start-floor.mjs): the part of a
# verb's time that is node's ESM loader and berth's module graph, not berth's work.
labels=("node -e 0" "floor: an empty ESM entry" "berth --version" "berth images" "floor: images' modules, no work" "berth ps" "floor: ps' modules, no work" "berth inspect IMG" "floor: inspect's modules" "berth --help" "import + openBerth()")
cmds=(
  "node -e 0"
  "node bench/start-floor.mjs empty"
  "${berth[*]} --version"
  "${berth[*]} images"
  "node bench/start-floor.mjs images"
  "${berth[*]} ps -a"
  "node bench/start-floor.mjs ps"
  "${berth[*]} inspect bench/img0"
  "node bench/start-floor.mjs inspect"
  "${berth[*]} --help"
  "node -e \"$lib\""
)
ns() { date +%s%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {printf "%.0f\n", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
measure() { # $1: label; the environment is already set by the caller
  local -a times=()
  local t i k
  for ((k = 0; k < ${#cmds[@]}; k++)); do times[k]=""; done
  for ((i = 0; i < rounds; i++)); do
    for ((k = 0; k < ${#cmds[@]}; k++)); do
      t=$(ns); eval "${cmds[k]}" >/dev/null; times[k]+="$(( $(ns) - t )) "
    done
  done
  local base m
  base=$(median ${times[0]})
  for ((k = 0; k < ${#cmds[@]}; k++)); do
    m=$(median ${times[k]})
    printf '%-34s %-28s %8.1f   %.2fx\n' "${labels[k]}" "$1" "$(echo "$m/1000000" | bc -l)" "$(echo "$m/$base" | bc -l)"
  done
}
printf '%-34s %-28s %8s   %s\n' "command ($nimages images, median of $rounds)" "NODE_EXTRA_CA_CERTS" "ms" "× node -e 0"
(unset NODE_EXTRA_CA_CERTS; measure "unset")
(export NODE_EXTRA_CA_CERTS="$ca"; measure "set")
