#!/usr/bin/env bash
# berth pull vs skopeo copy docker:// oci: vs ctr content fetch, from a local docker-registry
# (127.0.0.1, its own config) seeded by skopeo with the bench/datapath-corpus.mjs image (gzip
# layers). Targets (issue 13): small <= 0.8 of skopeo, 1g <= 0.5 of the fastest peer.
#   bash bench/pull.sh;  SIZE=1g bash bench/pull.sh
. "$(dirname "$0")/datapath-lib.sh"
start_registry "$M/seed"; PIDS+=("$RPID"); SEED=$REG
skopeo copy -q --dest-tls-verify=false "docker-archive:$X" "docker://$SEED/bench/dp:1"
start_containerd "$M/ctrd" '[plugins."io.containerd.metadata.v1.bolt"]
  content_sharing_policy = "isolated"'; PIDS+=("$CTRD_PID")
CTR="ctr -a $CTRD_SOCK"
for r in $(seq "$ROUNDS"); do
  echo "# round $r" >&2
  PREP='rm -rf "$M/out"/*' berth_both berth $BERTH --root "$M/out/b" pull -q "$SEED/bench/dp:1"
  rm -rf "$M/out"/*; measure skopeo skopeo copy -q --src-tls-verify=false "docker://$SEED/bench/dp:1" "oci:$M/out/s:x"
  rm -rf "$M/out"/*; measure ctr $CTR -n "p$r" content fetch --plain-http "$SEED/bench/dp:1"
  $CTR -n "p$r" content ls -q | xargs -r $CTR -n "p$r" content rm >/dev/null 2>&1 || true
  rm -rf "$M/out"/*; measure floor node bench/node-floor.mjs pull "$SEED/bench/dp:1" "$M/out/floor"
done
report pull "$([ "$SIZE" = 1g ] && echo 0.5 || echo 0.8)" skopeo ctr
