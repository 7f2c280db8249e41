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

# A free port on 127.0.0.1.
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# start_registry DIR [PORT]: a docker-registry on 127.0.0.1 with its own config; sets REG and RPID.
start_registry() {
  local d=$1 port=${2:-$(freeport)}; mkdir -p "$d"
  cat > "$d/config.yml" <<YML
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $d/data }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } } }
http: { addr: 127.0.0.1:$port, secret: bench }
YML
  docker-registry serve "$d/config.yml" >"$d/log" 2>&1 & RPID=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.05; done
  REG="127.0.0.1:$port"
}
stop_registry() { kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null || true; }
