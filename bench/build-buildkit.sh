#!/usr/bin/env bash
# berth build (BuildKit backend) against plain `buildctl build ... --output type=oci,dest=-` into
# /dev/null, on the same daemon, one interleaved run:
#   1. a no-change rebuild of a small image (target: berth <= 1.5x: Node's start and the store write),
#   2. a cold build producing a ${BIG_MB} MB layer (target: berth <= 1.15x: streaming into the store),
#   3. berth's peak RSS while a ${HUGE_MB} MB image streams in (target: <= 150 MB).
# Needs a real buildkitd: BUILDKIT_HOST (or BUILDKIT_ADDR) names it. Both sides get the corpus base
# image the same way: buildctl as an OCI-layout named context, berth from its store (it passes the
# same named context itself).
# Usage: BUILDKIT_HOST=unix:///run/buildkit/buildkitd.sock bash bench/build-buildkit.sh
#        RUNS=5 BIG_MB=200 HUGE_MB=1000 (defaults); tiny proof run: RUNS=1 BIG_MB=2 HUGE_MB=4
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
ADDR=${BUILDKIT_ADDR:-${BUILDKIT_HOST:-}}
[ -n "$ADDR" ] || { echo "bench/build-buildkit.sh: set BUILDKIT_HOST (or BUILDKIT_ADDR) to a running buildkitd" >&2; exit 2; }
BUILDCTL=${BERTH_BUILDCTL:-buildctl}
RUNS=${RUNS:-5}
BIG_MB=${BIG_MB:-200}
HUGE_MB=${HUGE_MB:-1000}
CORPUS=${BERTH_BUILD_CORPUS:-$repo/../shared/build-corpus}
BERTH="node $repo/bin/berth.js"

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"
python3 "$CORPUS/make-base.py" "$work/base" >/dev/null
base_digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$work/base/index.json")
$BERTH --root "$root" load -q --dir "$work/base" >/dev/null

mk() { # mk NAME DOCKERFILE
  mkdir -p "$work/$1"
  printf '%b' "$2" >"$work/$1/Dockerfile"
}
mk small 'FROM base\nRUN echo hello > /hello\n'
mk big "FROM base\nRUN head -c ${BIG_MB}000000 /dev/urandom > /big\n"
mk huge "FROM base\nRUN head -c ${HUGE_MB}000000 /dev/urandom > /huge\n"

plain() { # plain DIR [extra buildctl flags]
  local d=$1; shift
  "$BUILDCTL" --addr "$ADDR" build --frontend dockerfile.v0 --progress plain \
    --local "context=$work/$d" --local "dockerfile=$work/$d" \
    --oci-layout "base=$work/base" --opt "context:base=oci-layout://base@$base_digest" \
    "$@" --output type=oci,dest=- >/dev/null 2>/dev/null  # plain progress: buildctl before v0.13 has no quiet mode
}
viaberth() { # viaberth DIR [extra berth flags]
  local d=$1; shift
  $BERTH --root "$root" build --builder buildkit --buildkit-addr "$ADDR" -q -t "bench/$d" "$@" "$work/$d" >/dev/null
}
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Warm the cache for the no-change case on both sides.
plain small; viaberth small
: >"$work/t.plain"; : >"$work/t.berth"; : >"$work/c.plain"; : >"$work/c.berth"
for i in $(seq "$RUNS"); do
  t0=$(now); plain small; t1=$(now); viaberth small; t2=$(now)
  echo "$t1 - $t0" | bc >>"$work/t.plain"; echo "$t2 - $t1" | bc >>"$work/t.berth"
  t0=$(now); plain big --no-cache; t1=$(now); viaberth big --no-cache; t2=$(now)
  echo "$t1 - $t0" | bc >>"$work/c.plain"; echo "$t2 - $t1" | bc >>"$work/c.berth"
done
report() { # report LABEL PLAIN BERTH TARGET
  local p b
  p=$(median <"$2"); b=$(median <"$3")
  printf '%-34s buildctl %7.3fs   berth %7.3fs   ratio %5.2fx (target <= %s)\n' "$1" "$p" "$b" "$(echo "$b / $p" | bc -l)" "$4"
}
echo "runs: $RUNS (medians), daemon: $ADDR, buildctl: $("$BUILDCTL" --version | awk '{print $3}')"
report "no-change rebuild (small)" "$work/t.plain" "$work/t.berth" 1.5
report "cold build, ${BIG_MB} MB layer" "$work/c.plain" "$work/c.berth" 1.15

/usr/bin/time -f '%M' -o "$work/rss" $BERTH --root "$root" build --builder buildkit --buildkit-addr "$ADDR" -q --no-cache -t bench/huge "$work/huge" >/dev/null
printf 'peak RSS of berth, %s MB image: %d MB (target <= 150 MB)\n' "$HUGE_MB" "$(($(cat "$work/rss") / 1024))"
