#!/usr/bin/env bash
# The main job on embedded defaults: make a small busybox root filesystem, import it as an image,
# list and inspect it, save it to a docker-save archive and load it back, then run it with runc.
# Uses a private store under ./.tmp/demo-root (or BERTH_ROOT when set) so it never touches /var/lib/berth.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${BERTH_ROOT:-$PWD/.tmp/demo-root}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
berth() { node bin/berth.js --root "$root" "$@"; }

echo "== store: $root"
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/busybox"
for a in sh echo cat ls id uname true; do ln -sf busybox "$work/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$work/rootfs/etc/passwd"
printf 'root:x:0:\n' >"$work/rootfs/etc/group"
tar -C "$work/rootfs" --numeric-owner --owner=0 --group=0 -cf "$work/rootfs.tar" .

echo "== berth import rootfs.tar demo/busybox:latest"
berth import --change 'CMD ["sh"]' --change 'ENV GREETING=hello' "$work/rootfs.tar" demo/busybox:latest
echo "== berth images"
berth images
echo "== berth inspect demo/busybox (config)"
berth inspect demo/busybox | node -e 'const [i]=JSON.parse(require("fs").readFileSync(0,"utf8")); console.log(JSON.stringify({Id:i.Id,Os:i.Os,Architecture:i.Architecture,Cmd:i.Config.Cmd,Env:i.Config.Env}))'
echo "== berth save | berth load"
berth save -o "$work/demo.tar" demo/busybox:latest
berth rmi demo/busybox:latest
berth load -i "$work/demo.tar"
berth images demo/busybox
echo "== berth run --rm demo/busybox sh -c 'echo \$GREETING from \$(uname -s)'"
if [ "$(id -u)" = 0 ] && command -v runc >/dev/null; then
  berth run --rm demo/busybox sh -c 'echo $GREETING from $(uname -s) in a container'
else
  echo "(skipped: running containers needs root and runc)"
fi
echo "== berth system check"
berth system check
