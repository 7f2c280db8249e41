#!/usr/bin/env bash
# Interleaved pull/push timings against local docker-registry processes on 127.0.0.1:
#   berth pull   vs skopeo copy docker://… oci:…   vs ctr content fetch --plain-http
#   berth push   vs skopeo copy oci:… docker://…   vs ctr images push --plain-http
# on a 20-layer ~100 MB image (l20) and a 1 GB single-layer image (big), plus Node's own
# download+sha256+write throughput of the 1 GB blob as the ceiling. Everything on a fresh
# loop-mounted ext4.  ROUNDS=3 L20_LAYERS=20 L20_MB=5 BIG_MB=1024 bash bench/pull-push.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
L20_LAYERS=${L20_LAYERS:-20}
L20_MB=${L20_MB:-5}
BIG_MB=${BIG_MB:-1024}
IMAGES=${IMAGES:-"l20 big"}
W=${BENCH_DIR:-/tmp/berth-bench-pp}
BERTH="node $PWD/bin/berth.js"
[ -x /usr/bin/time ] || { echo "install GNU time (apt-get install time)"; exit 1; }
[ -f dist/pull.js ] || npx tsc -p . >/dev/null || true

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  mountpoint -q "$W/mnt" && umount "$W/mnt" || true
  rm -rf "$W"
}
trap cleanup EXIT
rm -rf "$W"; mkdir -p "$W/mnt"
truncate -s $(( BIG_MB * 10 + 6144 ))M "$W/fs.img"
mkfs.ext4 -q -F "$W/fs.img"
mount -o loop "$W/fs.img" "$W/mnt"
M="$W/mnt"; mkdir -p "$M/out"
R="$W/results.txt"; : > "$R"

echo "# corpus" >&2
node bench/pull-push-corpus.mjs "$M/layout" l20 "$L20_LAYERS" "$L20_MB" >&2
node bench/pull-push-corpus.mjs "$M/layout" big 1 "$BIG_MB" >&2
start_registry "$M/seed"; SEED=$REG; PIDS+=("$RPID")
for i in $IMAGES; do skopeo copy -q --dest-tls-verify=false "oci:$M/layout:$i" "docker://$SEED/bench/$i:v1"; done
BIGLAYER=$(python3 -c "import json,sys;d=json.load(open('$M/layout/index.json'));m=[x for x in d['manifests'] if x['annotations']['org.opencontainers.image.ref.name']=='big'][0];print(json.load(open('$M/layout/blobs/sha256/'+m['digest'][7:]))['layers'][0]['digest'])")

# containerd on a private socket
C="$M/ctrd"
start_containerd "$C" '[plugins."io.containerd.metadata.v1.bolt"]
  content_sharing_policy = "isolated"'
PIDS+=("$CTRD_PID")
CTR="ctr -a $C/c.sock"

# push sources: a berth store and a containerd namespace holding the images
for i in $IMAGES; do
  $BERTH --root "$M/src-berth" --progress none pull -q "$SEED/bench/$i:v1" >/dev/null
  $CTR -n pushsrc content fetch --plain-http "$SEED/bench/$i:v1" >/dev/null
done

measure() {
  local label=$1; shift
  sync
  /usr/bin/time -f "%e %M" -o "$W/t" "$@" >/dev/null 2>"$W/err" || { echo "FAILED: $label" >&2; tail -5 "$W/err" >&2; return 0; }
  echo "$label $(cat "$W/t")" >> "$R"
}

for r in $(seq "$ROUNDS"); do
  echo "# round $r" >&2
  measure "node-e0 -" node -e 0
  for i in $IMAGES; do
    rm -rf "$M/out"/*
    measure "pull-berth $i" $BERTH --root "$M/out/b" --progress none pull -q "$SEED/bench/$i:v1"
    rm -rf "$M/out"/*
    measure "pull-skopeo $i" skopeo copy -q --src-tls-verify=false "docker://$SEED/bench/$i:v1" "oci:$M/out/s:x"
    rm -rf "$M/out"/*
    measure "pull-ctr $i" $CTR -n "p$r$i" content fetch --plain-http "$SEED/bench/$i:v1"
    $CTR -n "p$r$i" content ls -q | xargs -r $CTR -n "p$r$i" content rm >/dev/null 2>&1 || true
    if [ "$i" = big ]; then
      measure "ceiling big" node bench/pull-node-ceiling.mjs "http://$SEED/v2/bench/big/blobs/$BIGLAYER" "$M/out/ceiling.bin"
      rm -f "$M/out/ceiling.bin"
    fi
    # pushes: each into a fresh registry
    start_registry "$M/t"; $BERTH --root "$M/src-berth" tag "$SEED/bench/$i:v1" "$REG/bench/$i:v1"
    measure "push-berth $i" $BERTH --root "$M/src-berth" --progress none push -q "$REG/bench/$i:v1"
    $BERTH --root "$M/src-berth" rmi "$REG/bench/$i:v1" >/dev/null 2>&1 || true
    stop_registry; rm -rf "$M/t"
    start_registry "$M/t"
    measure "push-skopeo $i" skopeo copy -q --dest-tls-verify=false "oci:$M/layout:$i" "docker://$REG/bench/$i:v1"
    stop_registry; rm -rf "$M/t"
    start_registry "$M/t"
    measure "push-ctr $i" $CTR -n pushsrc images push --plain-http "$REG/bench/$i:v1" "$SEED/bench/$i:v1"
    stop_registry; rm -rf "$M/t"
  done
done

python3 - "$R" "$BIG_MB" "$L20_LAYERS" "$L20_MB" <<'PY'
import sys, statistics as st, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, img, wall, rss = line.split()
    rows[(label, img)].append((float(wall), int(rss)))
med = {k: (st.median(w for w, _ in v), max(r for _, r in v) / 1024) for k, v in rows.items()}
size = {'l20': int(sys.argv[3]) * float(sys.argv[4]), 'big': int(sys.argv[2])}
print(f"node -e 0: {med[('node-e0','-')][0]:.3f}s (median of {len(rows[('node-e0','-')])})")
print("| op | image | berth | skopeo | ctr | berth/fastest peer | berth MB/s | berth peak RSS MB |")
print("|---|---|---|---|---|---|---|---|")
for op in ('pull', 'push'):
    for i in ('l20', 'big'):
        if (f'{op}-berth', i) not in med: continue
        b, rss = med[(f'{op}-berth', i)]
        peers = {t: med[(f'{op}-{t}', i)][0] for t in ('skopeo', 'ctr') if (f'{op}-{t}', i) in med}
        fastest = min(peers.values()) if peers else float('nan')
        print(f"| {op} | {i} | {b:.2f}s | {peers.get('skopeo', float('nan')):.2f}s | {peers.get('ctr', float('nan')):.2f}s | {b/fastest:.2f} | {size[i]/b:.0f} | {rss:.0f} |")
if ('ceiling', 'big') in med:
    c = med[('ceiling', 'big')][0]; b = med[('pull-berth', 'big')][0]
    print(f"1 GB blob: node undici+sha256+write {size['big']/c:.0f} MB/s; berth pull {size['big']/b:.0f} MB/s = {c/b*100:.0f}% of the ceiling (both include node start)")
PY
