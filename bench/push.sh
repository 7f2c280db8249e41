#!/usr/bin/env bash
# berth push vs skopeo copy oci: docker:// vs ctr images push, each into a fresh docker-registry
# on 127.0.0.1. Every tool pushes the same gzip-layered image from its own store (berth and ctr
# pulled it, skopeo copied it to an OCI layout). Target (issue 13): <= 0.9 of the faster peer.
#   bash bench/push.sh;  SIZE=1g bash bench/push.sh
. "$(dirname "$0")/datapath-lib.sh"
start_registry "$M/seed"; PIDS+=("$RPID"); SEED=$REG
skopeo copy -q --dest-tls-verify=false "docker-archive:$X" "docker://$SEED/bench/dp:1"
start_containerd "$M/ctrd" '[plugins."io.containerd.metadata.v1.bolt"]
  content_sharing_policy = "isolated"'; PIDS+=("$CTRD_PID")
CTR="ctr -a $CTRD_SOCK -n pushsrc"
$BERTH --root "$M/b" pull -q "$SEED/bench/dp:1" >/dev/null
$CTR content fetch --plain-http "$SEED/bench/dp:1" >/dev/null
skopeo copy -q --src-tls-verify=false "docker://$SEED/bench/dp:1" "oci:$M/s:dp"
# each push goes into a fresh registry on the same port (the pushed name stays the same)
TPORT=$(freeport)
fresh() { stop_registry; rm -rf "$M/t"; start_registry "$M/t" "$TPORT"; }
start_registry "$M/t" "$TPORT"
$BERTH --root "$M/b" tag "$SEED/bench/dp:1" "$REG/bench/dp:1"
for r in $(seq "$ROUNDS"); do
  echo "# round $r" >&2
  PREP=fresh berth_both berth $BERTH --root "$M/b" push -q "$REG/bench/dp:1"
  fresh; measure skopeo skopeo copy -q --dest-tls-verify=false "oci:$M/s:dp" "docker://$REG/bench/dp:1"
  fresh; measure ctr $CTR images push --plain-http "$REG/bench/dp:1" "$SEED/bench/dp:1"
done
stop_registry
report push 0.9 skopeo ctr
