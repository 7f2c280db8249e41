#!/usr/bin/env bash
# berth load vs skopeo copy docker-archive: oci: (uncompressed layers, the fastest peer) vs ctr
# images import, on the bench/datapath-corpus.mjs archive. Targets (issue 13): small <= 0.8, 1g
# <= 0.5 of the fastest peer; 1g MB/s >= 500 (hashing + storing). See bench/datapath-lib.sh.
#   bash bench/load.sh;  SIZE=1g bash bench/load.sh
. "$(dirname "$0")/datapath-lib.sh"
start_containerd "$M/ctrd"; PIDS+=("$CTRD_PID")
CTR="ctr -a $CTRD_SOCK -n bench"
for r in $(seq "$ROUNDS"); do
  echo "# round $r" >&2
  PREP='rm -rf "$M/out/b"' berth_both berth $BERTH --root "$M/out/b" load -q -i "$X"
  rm -rf "$M/out/s"; measure skopeo skopeo copy -q --dest-oci-accept-uncompressed-layers "docker-archive:$X" "oci:$M/out/s:img"
  measure ctr $CTR images import --no-unpack "$X"; $CTR images rm --sync docker.io/bench/dp:1 >/dev/null 2>&1 || true
  rm -rf "$M/out"/*; measure floor node bench/node-floor.mjs load "$X" "$M/out/floor"
  rm -rf "$M/out"/*
done
report load "$([ "$SIZE" = 1g ] && echo 0.5 || echo 0.8)" skopeo ctr
