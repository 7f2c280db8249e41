# Shared by the bench scripts (source it).

# start_containerd DIR [EXTRA_TOML]: a containerd on a private socket, root and state under DIR.
# Sets CTRD_PID and CTRD_SOCK; waits until it answers (10 s at most).
start_containerd() {
  local c=$1 extra=${2:-}
  mkdir -p "$c"
  cat >"$c/config.toml" <<TOML
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$c/c.sock"
[ttrpc]
  address = "$c/c.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
$extra
TOML
  containerd --config "$c/config.toml" >"$c/log" 2>&1 &
  CTRD_PID=$!
  CTRD_SOCK="$c/c.sock"
  for _ in $(seq 100); do ctr -a "$CTRD_SOCK" version >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "containerd did not start: $(tail -3 "$c/log")" >&2
  return 1
}
