# Shared by bench/{load,pull,push,save}.sh (source it): a fresh loop-mounted ext4, the corpus (a
# docker-archive made by bench/datapath-corpus.mjs), timed runs and the report.
#   SIZE=small (20 layers, ~100 MB in all; default) or SIZE=1g (one 1 GB layer); ROUNDS (default 5
#   small, 3 for 1g); BENCH_FS=tmpfs runs on a tmpfs instead of a fresh loop-mounted ext4 (the
#   block layer out of the figure). berth runs twice per round: NODE_EXTRA_CA_CERTS unset (as users
#   run it) and set (to $CA, default the system bundle); peers run once.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SIZE=${SIZE:-small}
case "$SIZE" in
  small) LAYERS=${LAYERS:-20}; MB=${MB:-100}; ROUNDS=${ROUNDS:-5} ;;
  1g) LAYERS=${LAYERS:-1}; MB=${MB:-1024}; ROUNDS=${ROUNDS:-3} ;;
  *) echo "SIZE is small or 1g" >&2; exit 2 ;;
esac
CA=${CA:-${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}}
BERTH=${BERTH:-node $PWD/bin/berth.js}
W=${BENCH_DIR:-/tmp/berth-bench-$(basename "$0" .sh)-$SIZE}
[ -x /usr/bin/time ] || { echo "install GNU time (apt-get install time)"; exit 1; }
[ -f dist/index.js ] || npx tsc -p . >/dev/null

PIDS=()
cleanup() {
  for p in "${PIDS[@]}" ${RPID:-}; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  mountpoint -q "$W/mnt" && umount "$W/mnt" || true
  rm -rf "$W"
}
trap cleanup EXIT
rm -rf "$W"; mkdir -p "$W/mnt"
if [ "${BENCH_FS:-ext4}" = tmpfs ]; then
  # The block layer out of the figure: what the tools do with the bytes, not what the disk does.
  mount -t tmpfs -o size=$(( MB * 8 + 4096 ))M tmpfs "$W/mnt"
else
  truncate -s $(( MB * 12 + 4096 ))M "$W/fs.img"
  mkfs.ext4 -q -F "$W/fs.img"
  mount -o loop "$W/fs.img" "$W/mnt"
fi
M="$W/mnt"; mkdir -p "$M/out"
R="$W/results.txt"; : > "$R"
X="$M/image.tar"
node bench/datapath-corpus.mjs "$X" "$LAYERS" "$MB" bench/dp:1 >&2

# measure LABEL CMD...: one timed run, wall seconds and peak RSS (kB) appended to the results.
measure() {
  local label=$1; shift
  sync
  /usr/bin/time -f "%e %M" -o "$W/t" "$@" >/dev/null 2>"$W/err" || { echo "FAILED: $label" >&2; tail -5 "$W/err" >&2; return 1; }
  echo "$label $(cat "$W/t")" >> "$R"
}
# berth_both LABEL CMD...: the same berth run with NODE_EXTRA_CA_CERTS unset, then set.
# PREP (a shell snippet) runs before each, untimed.
berth_both() {
  local label=$1; shift
  eval "${PREP:-:}"; measure "$label-unset" env -u NODE_EXTRA_CA_CERTS "$@"
  eval "${PREP:-:}"; measure "$label-set" env NODE_EXTRA_CA_CERTS="$CA" "$@"
}


# report OP TARGET PEER...: medians of berth (both CA settings) and each peer, berth/fastest peer;
# a "floor" row (bench/node-floor.mjs), when measured, is shown with berth/floor.
report() {
  python3 - "$R" "$1" "$2" "$SIZE" "$MB" "$ROUNDS" "${@:3}" <<'PY'
import sys, statistics as st, collections
res, op, target, size, mb, rounds, *peers = sys.argv[1:]
rows = collections.defaultdict(list)
for line in open(res):
    label, wall, rss = line.split()
    rows[label].append((float(wall), int(rss)))
med = {k: st.median(w for w, _ in v) for k, v in rows.items()}
rss = {k: max(r for _, r in v) / 1024 for k, v in rows.items()}
pm = {p: med[p] for p in peers if p in med}
fast = min(pm, key=pm.get)
print(f"{op} {size} ({mb} MB, medians of {rounds} interleaved rounds; load avg {open('/proc/loadavg').read().split()[0]})")
for p in peers:
    if p in med: print(f"  {p:<12} {med[p]:7.3f}s  peak RSS {rss[p]:5.0f} MB")
if 'floor' in med: print(f"  {'node floor':<12} {med['floor']:7.3f}s  peak RSS {rss['floor']:5.0f} MB  (bench/node-floor.mjs: sha256 + write + fsync, no berth code)")
for ca in ('unset', 'set'):
    k = f'berth-{ca}'
    if k not in med: continue
    print(f"  berth (NODE_EXTRA_CA_CERTS {ca:<5}) {med[k]:7.3f}s  peak RSS {rss[k]:5.0f} MB  {int(mb)/med[k]:6.0f} MB/s  berth/{fast} = {med[k]/pm[fast]:.2f}  (target <= {target})" + (f"  berth/floor = {med[k]/med['floor']:.2f}" if 'floor' in med else ''))
PY
}
