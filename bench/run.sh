#!/usr/bin/env bash
# berth run vs runc / ctr / umoci, interleaved, on a fresh loop-mounted ext4.
#
#   sudo bash bench/run.sh [ITERATIONS]      (default 15; needs root, runc, umoci, skopeo, containerd, jq)
#
# Everything runs twice: with NODE_EXTRA_CA_CERTS unset (as on a user's machine) and set (this
# machine sets it; node then reads the whole CA bundle at start). Only node and berth see it.
# Rows (each iteration runs every row once, in turn):
#   node -e 0                 the cost of starting node
#   node + run's modules      node loading what `berth run` loads, doing nothing (bench/start-floor.mjs)
#   runc run (floor)          `runc run` of a bundle prepared once
#   berth run --rm (warm)     snapshot present: mount, runc run, unmount, remove
#   ctr run --rm              containerd on a private socket/root/state, image imported with ctr
#   berth run --rm (cold)     first run: unpack the image, then as warm
#   umoci unpack + runc run   the cold floor
# Prints medians (ms) and the ratios the issue sets targets for.
set -euo pipefail
N=${1:-15}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BERTH="node $HERE/bin/berth.js"
[ "$(id -u)" = 0 ] || { echo "bench/run.sh: needs root" >&2; exit 1; }
[ -f "$HERE/dist/cli/main.js" ] || (cd "$HERE" && npx tsc -p .)

W=$(mktemp -d /tmp/berth-bench-XXXXXX)
CTRD_PID=
cleanup() {
  set +e
  [ -n "$CTRD_PID" ] && kill "$CTRD_PID" 2>/dev/null && wait "$CTRD_PID" 2>/dev/null
  for m in $(awk -v w="$W" '$2 ~ "^"w {print $2}' /proc/mounts | sort -r); do umount -l "$m"; done
  rm -rf "$W"
}
trap cleanup EXIT

# A fresh ext4 for everything that unpacks (the root fs slows down with many create/delete rounds).
truncate -s 2G "$W/disk.img"
mkfs.ext4 -q -F "$W/disk.img"
mkdir "$W/m"
mount -o loop "$W/disk.img" "$W/m"
D="$W/m"

# --- the busybox image, made with umoci (same content as test/fixtures/busybox-image.ts) ---
L="$D/layout"
umoci init --layout "$L"
umoci new --image "$L:bb"
umoci unpack --image "$L:bb" "$D/mk" >/dev/null
R="$D/mk/rootfs"
mkdir -p "$R/bin" "$R/etc" "$R/tmp" "$R/root" "$R/home/app" "$R/dev" "$R/proc" "$R/sys"
chmod 1777 "$R/tmp"
cp /bin/busybox "$R/bin/busybox"
for a in sh true false sleep cat echo id ls env; do ln -s busybox "$R/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\napp:x:1000:\n' >"$R/etc/group"
umoci repack --image "$L:bb" "$D/mk" >/dev/null
umoci config --image "$L:bb" --config.cmd sh --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin --os linux --architecture amd64
rm -rf "$D/mk"
# the same image with Cmd /bin/true, for the rows that unpack with umoci
umoci config --image "$L:bb" --tag bbtrue --config.cmd /bin/true

# berth stores: warm and cold share the content (skopeo writes the plain OCI layout berth uses).
IMG=berth.bench/busybox:latest
$BERTH --root "$D/bw" images >/dev/null
skopeo copy -q "oci:$L:bb" "oci:$D/bw/content:$IMG"
$BERTH --root "$D/bc" images >/dev/null
skopeo copy -q "oci:$L:bb" "oci:$D/bc/content:$IMG"
$BERTH --root "$D/bw" run --rm "$IMG" /bin/true 2>/dev/null # unpack once, print the runc warning once

# runc floor: a bundle unpacked once.
umoci unpack --image "$L:bb" "$D/bundle" >/dev/null
jq '.process.args=["/bin/true"] | .process.terminal=false' "$D/bundle/config.json" >"$D/bundle/c.json" && mv "$D/bundle/c.json" "$D/bundle/config.json"

# containerd on a private socket, root and state.
. "$HERE/bench/lib.sh"
start_containerd "$D/ctrd"
CTR="ctr -a $CTRD_SOCK -n bench"
skopeo copy -q "oci:$L:bb" "oci-archive:$D/bb.tar:$IMG"
$CTR images import --base-name "$IMG" "$D/bb.tar" >/dev/null 2>&1 || $CTR images import "$D/bb.tar" >/dev/null
CTR_IMG=$($CTR images ls -q | head -1)
$CTR run --rm "$CTR_IMG" warmup /bin/true

now() { date +%s%N; }
CA=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }

# bench MODE: MODE is "unset" or "set" (NODE_EXTRA_CA_CERTS for node and berth).
bench() {
  local mode=$1 i k
  local -a NENV
  if [ "$mode" = unset ]; then NENV=(env -u NODE_EXTRA_CA_CERTS); else NENV=(env "NODE_EXTRA_CA_CERTS=$CA"); fi
  declare -A T=()
  add() { T[$1]="${T[$1]:-} $2"; }
  time_it() { # name command...
    local t0 t1
    t0=$(now)
    "${@:2}" >/dev/null 2>&1 </dev/null || { echo "bench: '$1' failed: ${*:2}" >&2; exit 1; }
    t1=$(now)
    add "$1" $(((t1 - t0) / 1000))
  }
  for i in $(seq "$N"); do
    time_it node "${NENV[@]}" node -e 0
    time_it mods "${NENV[@]}" node "$HERE/bench/start-floor.mjs" run
    time_it runc runc --root "$D/runc" run -b "$D/bundle" "floor$mode$i"
    time_it warm "${NENV[@]}" $BERTH --root "$D/bw" run --rm "$IMG" /bin/true
    time_it ctr $CTR run --rm "$CTR_IMG" "c$mode$i" /bin/true
    rm -rf "$D/bc/snapshots" "$D/bc/containers"
    time_it cold "${NENV[@]}" $BERTH --root "$D/bc" run --rm "$IMG" /bin/true
    # umoci writes terminal: true; sed flips it (a few ms, counted against umoci)
    time_it umoci bash -c "umoci unpack --image '$L:bbtrue' '$D/u$i' >/dev/null && sed -i 's/\"terminal\": true/\"terminal\": false/' '$D/u$i/config.json' && runc --root '$D/runc' run -b '$D/u$i' 'u$mode$i'"
    rm -rf "$D/u$i"
  done
  declare -A M=()
  for k in node mods runc warm ctr cold umoci; do M[$k]=$(echo "${T[$k]}" | median); done
  echo
  echo "berth run bench: busybox image, $N interleaved iterations, NODE_EXTRA_CA_CERTS $mode, $(nproc) cores, $(uname -r), $(runc --version | head -1), node $(node --version)"
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
  printf '| %-38s | %10s |\n' "command" "median ms"
  printf '|%s|%s|\n' "----------------------------------------" "------------"
  printf '| %-38s | %10s |\n' "node -e 0" "${M[node]}"
  printf '| %-38s | %10s |\n' "node + run's modules, no work" "${M[mods]}"
  printf '| %-38s | %10s |\n' "runc run (prepared bundle, floor)" "${M[runc]}"
  printf '| %-38s | %10s |\n' "berth run --rm IMG /bin/true (warm)" "${M[warm]}"
  printf '| %-38s | %10s |\n' "ctr run --rm" "${M[ctr]}"
  printf '| %-38s | %10s |\n' "berth run --rm (cold, with unpack)" "${M[cold]}"
  printf '| %-38s | %10s |\n' "umoci unpack + runc run" "${M[umoci]}"
  echo
  echo "warm / ctr run --rm    = $(ratio "${M[warm]}" "${M[ctr]}")   (target <= 0.8)"
  echo "warm / runc            = $(ratio "${M[warm]}" "${M[runc]}")   (target <= 2.5)"
  echo "cold / umoci+runc      = $(ratio "${M[cold]}" "${M[umoci]}")   (target <= 1.0)"
  echo "floor: (node + run's modules + runc) / runc = $(ratio "$(awk -v a="${M[mods]}" -v b="${M[runc]}" 'BEGIN{print a+b}')" "${M[runc]}")   (what warm/runc cannot go below)"
  echo "floor: (node + runc) / (umoci+runc)          = $(ratio "$(awk -v a="${M[node]}" -v b="${M[runc]}" 'BEGIN{print a+b}')" "${M[umoci]}")   (what cold/umoci+runc cannot go below)"
  echo "(warm - node) / runc   = $(ratio "$(awk -v a="${M[warm]}" -v b="${M[node]}" 'BEGIN{print a-b}')" "${M[runc]}")   (berth's own cost beyond a node start)"
}

bench unset
bench set
