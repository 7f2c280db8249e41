#!/usr/bin/env bash
# Interleaved `berth copy` into containerd timings, on a fresh loop-mounted ext4 and a private containerd:
#   bash bench/copy-containerd.sh      # ROUNDS=3 LAYERS=20 LAYER_MB=5 BIG_MB=1024
# Per image (l20: LAYERS x LAYER_MB, big: one BIG_MB layer), each cold copy into an empty containerd:
#   berth copy IMG containerd:bench/IMG  vs  berth save IMG | ctr images import --no-unpack -
#   vs  ctr images import --no-unpack of a skopeo-made docker-archive;
# then the same copy again (warm) and a copy of IMG:2 (last layer replaced by a new 1 MiB one),
# with the blobs/bytes berth reports as sent; and registry -> oci-archive against skopeo.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
LAYERS=${LAYERS:-20}
LAYER_MB=${LAYER_MB:-5}
BIG_MB=${BIG_MB:-1024}
W=${BENCH_DIR:-/tmp/berth-bench-copy}
BERTH="node $PWD/bin/berth.js"
[ -x /usr/bin/time ] || { echo "install GNU time (apt-get install time)"; exit 1; }
[ -f dist/transports/index.js ] || npx tsc -p . >/dev/null || true

cleanup() {
  [ -n "${CPID:-}" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null || true
  [ -n "${RPID:-}" ] && kill "$RPID" 2>/dev/null && wait "$RPID" 2>/dev/null || true
  mountpoint -q "$W/mnt" && umount "$W/mnt" || true
  rm -rf "$W"
}
trap cleanup EXIT
rm -rf "$W"; mkdir -p "$W/mnt"
truncate -s $(( (BIG_MB + LAYERS * LAYER_MB) * 8 + 4096 ))M "$W/fs.img"
mkfs.ext4 -q -F "$W/fs.img"
mount -o loop "$W/fs.img" "$W/mnt"
M="$W/mnt"; mkdir -p "$M/corpus" "$M/out"
R="$W/results.txt"; : > "$R"
S="$W/sent.txt"; : > "$S"

echo "# corpus in $M" >&2
node bench/copy-containerd-corpus.mjs "$M/corpus/root" bench/l20 "$LAYERS" "$LAYER_MB"
node bench/copy-containerd-corpus.mjs "$M/corpus/root" bench/big 1 "$BIG_MB"
IMAGES="l20 big"
for i in $IMAGES; do
  $BERTH --root "$M/corpus/root" --progress none save -o "$M/corpus/$i.tar" "bench/$i:1"
  skopeo copy -q "docker-archive:$M/corpus/$i.tar" "docker-archive:$M/corpus/skopeo-$i.tar:bench/$i:1"
done

start_containerd "$M/ctrd"
CPID=$CTRD_PID
CTR="ctr -a $CTRD_SOCK -n bench"
COPY="$BERTH --root $M/corpus/root --progress none copy --containerd-address $CTRD_SOCK"

port=$(freeport); mkdir -p "$M/reg"
cat > "$M/reg/config.yml" <<YML
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $M/reg/data }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } } }
http: { addr: 127.0.0.1:$port, secret: bench }
YML
docker-registry serve "$M/reg/config.yml" >"$M/reg/log" 2>&1 & RPID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.05; done
REG="127.0.0.1:$port"
for i in $IMAGES; do $COPY "bench/$i:1" "docker://$REG/bench/$i:1" >/dev/null; done

# empty IMG: containerd forgets the image and (gc) its content
empty() { $CTR images rm --sync "docker.io/bench/$1:1" "docker.io/bench/$1:2" >/dev/null 2>&1 || true; }

# measure LABEL IMG CMD...: one timed run; records wall seconds and peak RSS (kB)
measure() {
  local label=$1 img=$2; shift 2
  sync
  /usr/bin/time -f "%e %M" -o "$W/t" "$@" >"$W/out" 2>"$W/err" || { echo "FAILED: $label $img" >&2; cat "$W/err" >&2; return 1; }
  echo "$label $img $(cat "$W/t")" >> "$R"
}
sent() { python3 -c "import json,sys;d=json.load(open('$W/out'));print('$1', '$2', d['sent']['blobs'], d['sent']['bytes'], d['existing']['blobs'])" >> "$S"; }

for r in $(seq "$ROUNDS"); do
  echo "# round $r" >&2
  measure node-e0 - node -e 0
  for i in $IMAGES; do
    empty "$i"; measure copy-berth "$i" $COPY --format json "bench/$i:1" "containerd:bench/docker.io/bench/$i:1"; sent cold "$i"
    measure copy-again "$i" $COPY --format json "bench/$i:1" "containerd:bench/docker.io/bench/$i:1"; sent again "$i"
    measure copy-rebuilt "$i" $COPY --format json "bench/$i:2" "containerd:bench/docker.io/bench/$i:2"; sent rebuilt "$i"
    empty "$i"; measure save-pipe-ctr "$i" sh -c "$BERTH --root $M/corpus/root --progress none save bench/$i:1 | $CTR images import --no-unpack -"
    empty "$i"; measure ctr-import-skopeo "$i" $CTR images import --no-unpack "$M/corpus/skopeo-$i.tar"
    empty "$i"
    rm -f "$M/out/b.tar"; measure reg-oci-berth "$i" $COPY "docker://$REG/bench/$i:1" "oci-archive:$M/out/b.tar"
    rm -f "$M/out/s.tar"; measure reg-oci-skopeo "$i" skopeo copy -q --src-tls-verify=false "docker://$REG/bench/$i:1" "oci-archive:$M/out/s.tar"
    rm -f "$M/out/b.tar" "$M/out/s.tar"
  done
done

python3 - "$R" "$S" <<'PY'
import sys, statistics as st, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, img, wall, rss = line.split()
    rows[(label, img)].append((float(wall), int(rss)))
med = {k: (st.median(w for w, _ in v), max(r for _, r in v) / 1024) for k, v in rows.items()}
n0 = med[('node-e0', '-')][0]
print(f"node -e 0: {n0:.3f}s (median)")
print("| image | berth copy | save \\| ctr import | ctr import (skopeo archive) | berth/faster | again | rebuilt | reg->oci-archive berth | skopeo | ratio | berth RSS MB |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for i in ['l20', 'big']:
    if ('copy-berth', i) not in med: continue
    b, rss = med[('copy-berth', i)]; p = med[('save-pipe-ctr', i)][0]; c = med[('ctr-import-skopeo', i)][0]
    a = med[('copy-again', i)][0]; rb = med[('copy-rebuilt', i)][0]
    ob = med[('reg-oci-berth', i)][0]; os_ = med[('reg-oci-skopeo', i)][0]
    print(f"| {i} | {b:.2f}s | {p:.2f}s | {c:.2f}s | {b/min(p,c):.2f} | {a:.2f}s ({a-n0:+.2f} over node) | {rb:.2f}s ({rb-n0:+.2f}) | {ob:.2f}s | {os_:.2f}s | {ob/os_:.2f} | {rss:.0f} |")
print("\nsent per copy (last round): kind image blobs bytes already-there")
last = {}
for line in open(sys.argv[2]):
    k, i, blobs, bts, ex = line.split(); last[(k, i)] = (blobs, bts, ex)
for (k, i), (blobs, bts, ex) in last.items(): print(f"  {k:8} {i:4} sent {blobs} blobs / {bts} bytes, {ex} already there")
PY
