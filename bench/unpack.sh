#!/usr/bin/env bash
# Unpack benchmark (run as root, after `npm run build`):
#   berth applyLayer vs `umoci unpack` on a busybox image and a Debian minbase root filesystem,
#   and the native addon vs the mknod/setfattr process fallback.
# Everything runs on a fresh loop-mounted ext4 (the root fs slows down after many rounds).
# The minbase tree comes from `debootstrap --variant=minbase bookworm` (cached in $CACHE).
#   ROUNDS=5 bash bench/unpack.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
N_NATIVE=${N_NATIVE:-3000}
NATIVE_ROUNDS=${NATIVE_ROUNDS:-1}  # the process fallback takes over a minute a round
CACHE=${CACHE:-/tmp/berth-bench}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" = 0 ] || { echo "bench/unpack.sh must run as root" >&2; exit 1; }
[ -f dist/archive/apply.js ] || npm run build >/dev/null

mkdir -p "$CACHE"
if [ ! -d "$CACHE/minbase" ]; then
  echo "debootstrap --variant=minbase bookworm (once, cached in $CACHE/minbase)..." >&2
  debootstrap --variant=minbase bookworm "$CACHE/minbase.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1
  mv "$CACHE/minbase.tmp" "$CACHE/minbase"
fi

WORK=$(mktemp -d /tmp/berth-bench-unpack.XXXXXX)
MNT=$WORK/mnt
truncate -s 6G "$WORK/fs.img"
mkfs.ext4 -q -F "$WORK/fs.img"
mkdir "$MNT"
mount -o loop "$WORK/fs.img" "$MNT"
cleanup() { cd /; umount "$MNT" 2>/dev/null || umount -l "$MNT"; rm -rf "$WORK"; }
trap cleanup EXIT

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Images, built by umoci from plain trees (one gzip layer each).
mkdir -p "$MNT/src/busybox/bin" "$MNT/src/busybox/etc" "$MNT/src/busybox/tmp"
cp /bin/busybox "$MNT/src/busybox/bin/busybox"
"$MNT/src/busybox/bin/busybox" --install -s "$MNT/src/busybox/bin"
echo 'root:x:0:0:root:/root:/bin/sh' >"$MNT/src/busybox/etc/passwd"
L=$MNT/layout
umoci init --layout "$L" >/dev/null
for img in busybox minbase; do
  umoci new --image "$L:$img"
  if [ $img = busybox ]; then src=$MNT/src/busybox; else src=$CACHE/minbase; fi
  umoci insert --image "$L:$img" "$src" / >/dev/null
done
nfiles() { find "$1" | wc -l; }
echo "busybox: $(nfiles "$MNT/src/busybox") entries; minbase: $(nfiles "$CACHE/minbase") entries, $(du -sh "$CACHE/minbase" | cut -f1)" >&2

declare -A T
for r in $(seq "$ROUNDS"); do
  sync
  t=$(date +%s%N); node -e 0; T[node]+=" $(ms "$t")"
  for img in busybox minbase; do
    sync
    t=$(date +%s%N); umoci unpack --image "$L:$img" "$MNT/u" >/dev/null; T[umoci-$img]+=" $(ms "$t")"
    rm -rf "$MNT/u"; sync
    t=$(date +%s%N); in=$(node bench/unpack-berth.mjs "$L" "$img" "$MNT/b" apply); T[berth-$img]+=" $(ms "$t")"; T[berthin-$img]+=" $in"
    rm -rf "$MNT/b"; sync
    t=$(date +%s%N); in=$(node bench/unpack-berth.mjs "$L" "$img" "$MNT/o" overlay); T[overlay-$img]+=" $(ms "$t")"
    rm -rf "$MNT/o"
  done
done

# The native door: N whiteouts and N capability xattrs in one layer.
W=$MNT/native-src
mkdir -p "$W/wh" "$W/caps"
( cd "$W/wh" && seq 1 "$N_NATIVE" | sed 's/^/.wh.f/' | xargs touch )
( cd "$W/caps" && seq 1 "$N_NATIVE" | sed 's/^/f/' | xargs touch )
( cd "$W" && for i in $(seq 1 "$N_NATIVE"); do printf '# file: caps/f%s\nsecurity.capability=0x0100000200040000000000000000000000000000\n\n' "$i"; done >restore && setfattr --restore=restore )
tar --xattrs --xattrs-include='security.*' -C "$W" -cf "$MNT/native.tar" wh caps
for r in $(seq "$NATIVE_ROUNDS"); do
  for kind in addon process; do
    mkdir "$MNT/n"
    out=$(node bench/unpack-native.mjs "$MNT/native.tar" "$MNT/n" $kind); T[native-$kind]+=" ${out%% *}"
    rm -rf "$MNT/n"
  done
done

echo
echo "unpack, median of $ROUNDS rounds (ms, wall clock including node start; node -e 0 = $(echo ${T[node]} | median) ms)"
printf '%-10s %12s %14s %16s %16s %8s\n' image "umoci unpack" "berth (apply)" "berth in-process" "berth (overlay)" ratio
for img in busybox minbase; do
  u=$(echo ${T[umoci-$img]} | median); b=$(echo ${T[berth-$img]} | median); bi=$(echo ${T[berthin-$img]} | median); o=$(echo ${T[overlay-$img]} | median)
  printf '%-10s %12s %14s %16s %16s %8s\n' $img "$u" "$b" "$bi" "$o" "$(awk -v b="$b" -v u="$u" 'BEGIN{printf "%.2fx", b/u}')"
done
echo
echo "raw rounds (ms):"
for k in "${!T[@]}"; do echo "  $k:${T[$k]}"; done | sort
a=$(echo ${T[native-addon]} | median); p=$(echo ${T[native-process]} | median)
echo
echo "native door: $N_NATIVE whiteouts (mknod) + $N_NATIVE security.capability xattrs in one layer, overlay mode"
echo "  addon:   $a ms"
echo "  process: $p ms ($(awk -v a="$a" -v p="$p" 'BEGIN{printf "%.0fx", p/a}') slower)"
