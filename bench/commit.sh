#!/usr/bin/env bash
# berth commit vs umoci repack: the same change (SMALL small files + one BIG_MB file) on the same
# busybox image, interleaved rounds, on a fresh loop-mounted ext4.
#   bash bench/commit.sh                # ROUNDS=3 SMALL=10000 BIG_MB=1024
#   ROUNDS=1 SMALL=200 BIG_MB=8 bash bench/commit.sh    # a quick check that it works
#   CONTENT=mixed bash bench/commit.sh  # the big file half system files (/usr as a tar), half random
# CONTENT=random (default): every byte is random, nothing compresses (already-compressed data:
# archives, media). CONTENT=mixed is closer to a real layer: binaries, libraries and text that
# deflate shrinks, next to data it cannot. Both tools get the same bytes either way.
# berth: a container copies the change into its rootfs, then `berth commit` (diff of the overlay
# upper dir -> gzip layer -> image). umoci: `umoci unpack`, the change copied into the bundle's
# rootfs, then `umoci repack` (timed; the unpack is not). Prints median wall seconds, the
# berth/umoci ratio and peak RSS (MB).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SMALL=${SMALL:-10000}
BIG_MB=${BIG_MB:-1024}
CONTENT=${CONTENT:-random}
W=${BENCH_DIR:-/tmp/berth-bench-commit}
BERTH="node $PWD/bin/berth.js"
[ -x /usr/bin/time ] || { echo "install GNU time (apt-get install time)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root (containers, mounts)"; exit 1; }
[ -f dist/commit.js ] || npx tsc -p . >/dev/null

cleanup() {
  [ -n "${ROOT:-}" ] && $BERTH --root "$ROOT" rm -f chg >/dev/null 2>&1 || true
  mountpoint -q "$W/mnt" && umount "$W/mnt" || true
  rm -rf "$W"
}
trap cleanup EXIT
rm -rf "$W"; mkdir -p "$W/mnt"
truncate -s $(( BIG_MB * 8 + 2048 ))M "$W/fs.img"
mkfs.ext4 -q -F "$W/fs.img"
mount -o loop "$W/fs.img" "$W/mnt"
M="$W/mnt"; ROOT="$M/root"
R="$W/results.txt"; : > "$R"

echo "# base image and change in $M" >&2
mkdir -p "$M/base/bin" "$M/base/etc" "$M/base/tmp"
cp /bin/busybox "$M/base/bin/"
for a in sh cp ls cat true; do ln -s busybox "$M/base/bin/$a"; done
echo 'root:x:0:0::/:/bin/sh' > "$M/base/etc/passwd"
tar -C "$M/base" -cf "$M/base.tar" .
$BERTH --root "$ROOT" --progress none import -c 'ENV PATH=/bin' "$M/base.tar" bench/base:1 >/dev/null
mkdir -p "$M/change/data/small"
python3 - "$M/change/data/small" "$SMALL" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    sub = os.path.join(d, f"d{i // 1000:03d}")
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"f{i:05d}"), "wb") as f:
        f.write(os.urandom(512 + i % 2048))
PY
case $CONTENT in
  random) head -c "${BIG_MB}M" /dev/urandom > "$M/change/data/big.bin" ;;
  mixed) { tar -cf - -C / usr 2>/dev/null | head -c "$(( BIG_MB / 2 ))M" || true; head -c "$(( BIG_MB - BIG_MB / 2 ))M" /dev/urandom; } > "$M/change/data/big.bin" ;;
  *) echo "CONTENT is random or mixed" >&2; exit 1 ;;
esac

# berth: one container holds the change; each round commits it.
$BERTH --root "$ROOT" --progress none run --name chg -v "$M/change:/src:ro" bench/base:1 cp -a /src/data /data
# umoci: the same image as an OCI layout.
skopeo copy -q "oci:$ROOT/content:docker.io/bench/base:1" "oci:$M/layout:base"

# measure LABEL LAYOUT:REF CMD...: wall seconds, peak RSS and the size of the image's last layer.
measure() {
  local label=$1 ref=$2; shift 2
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -f "%e %M" -o "$W/t" "$@" >/dev/null 2>"$W/err" || { echo "FAILED: $label" >&2; cat "$W/err" >&2; return 1; }
  local size; size=$(skopeo inspect --raw "oci:$ref" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][-1]["size"])')
  echo "$label $(cat "$W/t") $size" | tee -a "$R" >&2
}

for r in $(seq "$ROUNDS"); do
  echo "# round $r" >&2
  measure berth "$ROOT/content:docker.io/bench/committed:$r" $BERTH --root "$ROOT" --progress none commit chg "bench/committed:$r"
  rm -rf "$M/bundle"
  umoci unpack --image "$M/layout:base" "$M/bundle" >/dev/null
  cp -a "$M/change/data" "$M/bundle/rootfs/data"
  measure umoci "$M/layout:r$r" umoci repack --image "$M/layout:r$r" "$M/bundle"
  $BERTH --root "$ROOT" --progress none rmi "bench/committed:$r" >/dev/null
  $BERTH --root "$ROOT" --progress none system prune >/dev/null 2>&1 || true
done

python3 - "$R" "$SMALL" "$BIG_MB" "$CONTENT" <<'PY'
import sys, statistics as st, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, wall, rss, size = line.split()
    rows[label].append((float(wall), int(rss), int(size)))
b = st.median(w for w, _, _ in rows['berth']); u = st.median(w for w, _, _ in rows['umoci'])
rb = max(r for _, r, _ in rows['berth']) / 1024; ru = max(r for _, r, _ in rows['umoci']) / 1024
sb = max(s for _, _, s in rows['berth']) / 1e6; su = max(s for _, _, s in rows['umoci']) / 1e6
print(f"change: {sys.argv[2]} small files + {sys.argv[3]} MB in one file ({sys.argv[4]}); {len(rows['berth'])} round(s)")
print("| | berth commit | umoci repack | berth/umoci |")
print("|---|---|---|---|")
print(f"| wall (median) | {b:.2f}s | {u:.2f}s | {b/u:.2f} |")
print(f"| peak RSS | {rb:.0f} MB | {ru:.0f} MB | |")
print(f"| layer (gzip) | {sb:.1f} MB | {su:.1f} MB | {sb/su:.3f} |")
PY
