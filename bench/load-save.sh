#!/usr/bin/env bash
# Interleaved load/save timings: berth vs skopeo vs ctr, on a fresh loop-mounted ext4.
#   bash bench/load-save.sh            # ROUNDS=3 BIG_MB=1024 MULTI_LAYERS=10 MULTI_MB=10 DEBIAN=0
# Prints a table: median wall seconds, berth/peer ratios, peak RSS (MB); and the 1 GB layer
# hash+store throughput against `openssl dgst -sha256`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
BIG_MB=${BIG_MB:-1024}
MULTI_LAYERS=${MULTI_LAYERS:-10}
MULTI_MB=${MULTI_MB:-10}
DEBIAN=${DEBIAN:-0}
W=${BENCH_DIR:-/tmp/berth-bench-load}
BERTH="node $PWD/bin/berth.js"
[ -x /usr/bin/time ] || { echo "install GNU time (apt-get install time)"; exit 1; }
[ -f dist/import/load.js ] || npx tsc -p . >/dev/null || true

cleanup() {
  [ -n "${CPID:-}" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null || true
  mountpoint -q "$W/mnt" && umount "$W/mnt" || true
  rm -rf "$W"
}
trap cleanup EXIT
rm -rf "$W"; mkdir -p "$W/mnt"
truncate -s $(( (BIG_MB * 7 + 4096) ))M "$W/fs.img"
mkfs.ext4 -q -F "$W/fs.img"
mount -o loop "$W/fs.img" "$W/mnt"
M="$W/mnt"; mkdir -p "$M/corpus" "$M/out"
R="$W/results.txt"; : > "$R"

echo "# building corpus in $M" >&2
$BERTH --root "$M/corpus/root" --progress none version >/dev/null 2>&1 || true
node bench/load-corpus.mjs "$M/corpus/root" bench/multi:1 "$MULTI_LAYERS" "$MULTI_MB"
mkdir -p "$M/big"; head -c "${BIG_MB}M" /dev/urandom > "$M/big/blob.bin"
tar -C "$M/big" -cf "$M/big.tar" blob.bin; rm -rf "$M/big"
$BERTH --root "$M/corpus/root" --progress none import "$M/big.tar" bench/big:1 >/dev/null; rm -f "$M/big.tar"
IMAGES="multi big"
if [ "$DEBIAN" = 1 ]; then
  if timeout 600 debootstrap --variant=minbase stable "$M/deb" >/dev/null 2>&1; then
    tar -C "$M/deb" -cf "$M/deb.tar" . && $BERTH --root "$M/corpus/root" --progress none import "$M/deb.tar" bench/debian:1 >/dev/null && IMAGES="$IMAGES debian"
    rm -rf "$M/deb" "$M/deb.tar"
  else echo "# debootstrap failed (no mirror?): skipping the Debian corpus" >&2; fi
fi
for i in $IMAGES; do
  $BERTH --root "$M/corpus/root" --progress none save -o "$M/corpus/$i.tar" "bench/$i:1"
  skopeo copy -q "docker-archive:$M/corpus/$i.tar" "oci:$M/corpus/oci-$i:bench/$i:1" --dest-oci-accept-uncompressed-layers
done
ls -la "$M/corpus" >&2

# containerd on a private socket
C="$M/ctrd"
start_containerd "$C"
CPID=$CTRD_PID
CTR="ctr -a $C/c.sock -n bench"

# measure LABEL CMD...: one timed run; records wall seconds and peak RSS (kB)
measure() {
  local label=$1; shift
  sync
  /usr/bin/time -f "%e %M" -o "$W/t" "$@" >/dev/null 2>"$W/err" || { echo "FAILED: $label" >&2; cat "$W/err" >&2; return 1; }
  echo "$label $(cat "$W/t")" >> "$R"
}

for r in $(seq "$ROUNDS"); do
  echo "# round $r" >&2
  measure "node-e0 -" node -e 0
  # the CLI's fixed cost: start, parse, open the store, refuse an empty archive
  measure "cli-fixed -" sh -c "$BERTH --root $M/out/f load -q -i /dev/null 2>/dev/null; true"
  for i in $IMAGES; do
    X="$M/corpus/$i.tar"
    rm -rf "$M/out/b"; measure "load-berth $i" $BERTH --root "$M/out/b" load -q -i "$X"
    rm -rf "$M/out/s"; measure "load-skopeo $i" skopeo copy -q --dest-oci-accept-uncompressed-layers "docker-archive:$X" "oci:$M/out/s:img"
    measure "load-ctr $i" $CTR images import --no-unpack "$X"; $CTR images rm --sync "docker.io/bench/$i:1" >/dev/null 2>&1 || true
    rm -f "$M/out/save.tar"; measure "save-berth $i" $BERTH --root "$M/corpus/root" --progress none save -o "$M/out/save.tar" "bench/$i:1"
    rm -f "$M/out/save.tar"; measure "save-skopeo $i" skopeo copy -q "oci:$M/corpus/oci-$i:bench/$i:1" "docker-archive:$M/out/save.tar:bench/$i:1"
    rm -rf "$M/out/b" "$M/out/s" "$M/out/save.tar"
  done
  # 1 GB layer: hashing alone, for the throughput comparison
  measure "openssl big" openssl dgst -sha256 "$M/corpus/root/content/blobs/sha256/$(ls -S "$M/corpus/root/content/blobs/sha256" | head -1)"
done

python3 - "$R" "$BIG_MB" <<'PY'
import sys, statistics as st, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, img, wall, rss = line.split()
    rows[(label, img)].append((float(wall), int(rss)))
med = {k: (st.median(w for w, _ in v), max(r for _, r in v) / 1024) for k, v in rows.items()}
imgs = sorted({i for (_, i) in med if i not in ('-',)}, key=lambda x: ['multi', 'big', 'debian'].index(x) if x in ('multi','big','debian') else 9)
n0 = med[('node-e0', '-')][0]
print(f"node -e 0: {n0:.3f}s (median)")
if ('cli-fixed', '-') in med: print(f"berth load of an empty input (CLI start + store open): {med[('cli-fixed', '-')][0]:.3f}s (median)")
print("| image | berth load | skopeo | ctr import | berth/fastest | berth save | skopeo save | save ratio | berth RSS load/save MB |")
print("|---|---|---|---|---|---|---|---|---|")
for i in imgs:
    if ('load-berth', i) not in med: continue
    bl, rl = med[('load-berth', i)]; sk = med[('load-skopeo', i)][0]; ct = med[('load-ctr', i)][0]
    bs, rs = med[('save-berth', i)]; ss = med[('save-skopeo', i)][0]
    print(f"| {i} | {bl:.2f}s | {sk:.2f}s | {ct:.2f}s | {bl/min(sk,ct):.2f} | {bs:.2f}s | {ss:.2f}s | {bs/ss:.2f} | {rl:.0f} / {rs:.0f} |")
if ('openssl', 'big') in med:
    o = med[('openssl', 'big')][0]; b = med[('load-berth', 'big')][0]
    mb = int(sys.argv[2])
    print(f"1 GB layer: openssl dgst {mb/o:.0f} MB/s; berth load (hash+store, incl. node start) {mb/b:.0f} MB/s = {o/b*100:.0f}% of openssl")
PY
