#!/usr/bin/env bash
# berth save vs skopeo copy oci: docker-archive: of the same (loaded, uncompressed) image.
# Targets (issue 13): small <= 0.8, 1g <= 0.5.  bash bench/save.sh;  SIZE=1g bash bench/save.sh
. "$(dirname "$0")/datapath-lib.sh"
$BERTH --root "$M/b" load -q -i "$X" >/dev/null
skopeo copy -q --dest-oci-accept-uncompressed-layers "docker-archive:$X" "oci:$M/s:bench/dp:1"
for r in $(seq "$ROUNDS"); do
  echo "# round $r" >&2
  PREP='rm -f "$M/out/save.tar"' berth_both berth $BERTH --root "$M/b" save -o "$M/out/save.tar" bench/dp:1
  rm -f "$M/out/save.tar"; measure skopeo skopeo copy -q "oci:$M/s:bench/dp:1" "docker-archive:$M/out/save.tar:bench/dp:1"
  rm -f "$M/out/save.tar"
done
report save "$([ "$SIZE" = 1g ] && echo 0.5 || echo 0.8)" skopeo
