#!/usr/bin/env bash
# Built-in builder benchmark (run as root, after `npm run build`), one interleaved run, medians,
# ratios printed. berth is the CLI (`node bin/berth.js build --builder builtin`, node's start
# included), timed with NODE_EXTRA_CA_CERTS unset and set in the same rounds. Peers: `buildah bud`
# (overlay driver, --isolation chroot: its fastest set-up here) and a warm buildkitd through
# buildctl (BUILDKIT_HOST, and buildctl on PATH or BERTH_BUILDCTL; skipped when none answers).
# berth's root and buildah's storage live on a fresh loop-mounted ext4 (buildkitd keeps its own
# --root: it is a running daemon).
# Cases (CASES, default "small minbase rss"):
#   small    5 RUN / 3 COPY on the corpus base: cold (berth fresh root, buildah fresh storage,
#            buildctl --no-cache on the warm daemon), no-change rebuild, and a rebuild after one
#            file under the last COPY changed (berth: steps run / steps).
#   minbase  a Debian bookworm minbase (debootstrap from the apt mirror; tarball cached in
#            MINBASE_TAR, default /var/tmp/berth-minbase/minbase.tar) as the base of a 3-RUN
#            Dockerfile, from the same OCI archive on both sides: berth load + build (which
#            unpacks the base) vs buildah pull + bud (buildah unpacks at pull).
#   rss      berth's peak RSS (VmHWM via /usr/bin/time) for a build whose context is one 1 GB file
#            plus 2000 small ones (COPY . /ctx).
#   ROUNDS=5 CASES=small bash bench/build-builtin.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
ROUNDS=${ROUNDS:-3}
CASES=${CASES:-small minbase rss}
BK=${BUILDKIT_HOST:-}
BUILDCTL=${BERTH_BUILDCTL:-$(command -v buildctl || echo buildctl)}
MINBASE_TAR=${MINBASE_TAR:-/var/tmp/berth-minbase/minbase.tar}
CA=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
[ "$(id -u)" = 0 ] || { echo "bench/build-builtin.sh must run as root" >&2; exit 1; }
[ -f dist/build/native/index.js ] || npm run build >/dev/null
command -v buildah >/dev/null || { echo "buildah not installed (apt-get install buildah)" >&2; exit 1; }
HAVE_BK=0
[ -n "$BK" ] && "$BUILDCTL" --addr "$BK" debug workers >/dev/null 2>&1 && HAVE_BK=1 || echo "no buildkitd answers at $BK: buildctl columns skipped" >&2

W=/tmp/berth-bench-build.$$  # lower case: buildah names oci: images by path
cleanup() {
  for m in $(grep -o "$W/[^ ]*" /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  mountpoint -q "$W/mnt" && umount "$W/mnt" || true
  rm -rf "$W"
}
trap cleanup EXIT
rm -rf "$W"; mkdir -p "$W/mnt"
truncate -s 8G "$W/fs.img"
mkfs.ext4 -q -F "$W/fs.img"
mount -o loop "$W/fs.img" "$W/mnt"
M=$W/mnt
R=$W/results; : >"$R"

now() { date +%s%N; }
# t KEY CMD...: time one run (ms) into the results file; output discarded; failure is fatal.
t() {
  local key=$1; shift
  local t0; t0=$(now)
  "$@" >/dev/null 2>"$W/err" || { echo "failed: $* ($(tail -3 "$W/err"))" >&2; exit 1; }
  echo "$key $(( ($(now) - t0) / 1000000 ))" >>"$R"
}
berth_unset() { env -u NODE_EXTRA_CA_CERTS node "$REPO/bin/berth.js" "$@"; }
berth_set() { NODE_EXTRA_CA_CERTS=$CA node "$REPO/bin/berth.js" "$@"; }
median() { awk -v k="$1" '$1==k {print $2}' "$R" | sort -n | awk '{a[NR]=$1} END {if (NR==0) print "NA"; else print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { local a b; a=$(median "$1"); b=$(median "$2"); [ "$a" = NA ] || [ "$b" = NA ] && { echo "n/a"; return; }; awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2fx", a / b}'; }
line() { printf '  %-44s %8s ms\n' "$1" "$(median "$2")"; }

buildah_fresh() {  # buildah_fresh DIR: an empty overlay storage
  rm -rf "$1" 2>/dev/null || { umount -R "$1" 2>/dev/null || true; rm -rf "$1"; }
  mkdir -p "$1"
  BA=(buildah --root "$1/root" --runroot "$1/run" --storage-driver overlay)
}
buildah_drop() { "${BA[@]}" rm -a >/dev/null 2>&1 || true; umount -R "$1" 2>/dev/null || true; rm -rf "$1" 2>/dev/null || true; }

# ---------------------------------------------------------------- small: 5 RUN / 3 COPY
small() {
  python3 ../shared/build-corpus/make-base.py "$M/base" >/dev/null
  local digest; digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$M/base/index.json")
  local ctx=$M/ctx; mkdir -p "$ctx/src"
  for i in 1 2 3; do echo "file $i" >"$ctx/src/f$i.txt"; done
  cat >"$ctx/Dockerfile" <<'DF'
FROM base
RUN echo one > /one
COPY src/f1.txt /app/
RUN echo two > /two && ls /app > /listing
COPY src/f2.txt /app/
RUN echo three > /three
RUN echo four > /four
COPY src/f3.txt /app/
RUN cat /app/f3.txt > /last
DF
  sed 's/^FROM base$/FROM localhost\/base/' "$ctx/Dockerfile" >"$ctx/Dockerfile.buildah"
  local bk=(); [ "$HAVE_BK" = 1 ] && bk=("$BUILDCTL" --addr "$BK" build --frontend dockerfile.v0 --progress plain --local "context=$ctx" --local "dockerfile=$ctx" --oci-layout "base=$M/base" --opt "context:base=oci-layout://base@$digest" --output type=image,name=docker.io/bench/small:latest)
  [ "$HAVE_BK" = 1 ] && "${bk[@]}" >/dev/null 2>&1  # the daemon warm: base known, workers up
  for r in $(seq "$ROUNDS"); do
    for ca in unset set; do
      local root=$M/berth-$ca; rm -rf "$root"
      berth_$ca --root "$root" load -q --dir "$M/base" >/dev/null
      t "small.berth.$ca.cold" berth_$ca --root "$root" build --builder builtin -q -t x "$ctx"
      t "small.berth.$ca.nochange" berth_$ca --root "$root" build --builder builtin -q -t x "$ctx"
      # --no-cache on a root that has the base unpacked: what buildctl --no-cache on a warm daemon does.
      t "small.berth.$ca.nocache" berth_$ca --root "$root" build --builder builtin -q --no-cache -t x "$ctx"
      echo "round $r $ca $RANDOM" >"$ctx/src/f3.txt"
    done
    t small.node node -e 0
    buildah_fresh "$M/buildah"
    "${BA[@]}" pull -q "oci:$M/base:base" >/dev/null
    "${BA[@]}" tag "$("${BA[@]}" images -q | head -1)" localhost/base >/dev/null
    t small.buildah.cold "${BA[@]}" bud --isolation chroot --layers -f "$ctx/Dockerfile.buildah" -t x "$ctx"
    t small.buildah.nochange "${BA[@]}" bud --isolation chroot --layers -f "$ctx/Dockerfile.buildah" -t x "$ctx"
    buildah_drop "$M/buildah"
    if [ "$HAVE_BK" = 1 ]; then
      t small.buildctl.cold "${bk[@]}" --no-cache
      "${bk[@]}" >/dev/null 2>&1
      t small.buildctl.nochange "${bk[@]}"
    fi
  done
  # Only the changed COPY and the RUN after it run again (steps that ran / steps).
  echo "round last $RANDOM" >"$ctx/src/f3.txt"
  local ran; ran=$(node bench/build-builtin.mjs "$M/berth-unset" "$ctx" x)
  echo "small: 5 RUN / 3 COPY on the corpus base, $ROUNDS rounds, medians"
  for ca in unset set; do
    line "berth cold, fresh root (CA $ca)" "small.berth.$ca.cold"
    line "berth --no-cache, base unpacked (CA $ca)" "small.berth.$ca.nocache"
    line "berth no-change rebuild (CA $ca)" "small.berth.$ca.nochange"
  done
  line "node -e 0 (start floor on this load)" small.node
  line "buildah cold" small.buildah.cold
  line "buildah no-change rebuild" small.buildah.nochange
  if [ "$HAVE_BK" = 1 ]; then
    line "buildctl cold --no-cache (warm daemon)" small.buildctl.cold
    line "buildctl no-change rebuild (warm daemon)" small.buildctl.nochange
  fi
  for ca in unset set; do
    echo "  CA $ca: cold berth/buildah $(ratio small.berth.$ca.cold small.buildah.cold) (target <= 0.5), berth/buildkitd $(ratio small.berth.$ca.cold small.buildctl.cold) (target <= 1.0); --no-cache berth/buildkitd $(ratio small.berth.$ca.nocache small.buildctl.cold)"
    echo "  CA $ca: no-change berth/buildah $(ratio small.berth.$ca.nochange small.buildah.nochange) (target <= 0.5, and <= 350 ms), berth/buildkitd $(ratio small.berth.$ca.nochange small.buildctl.nochange)"
  done
  echo "  one file changed under the last COPY: $ran"
}

# ---------------------------------------------------------------- minbase: Debian minbase + 3 RUN
minbase() {
  if [ ! -s "$MINBASE_TAR" ]; then
    command -v debootstrap >/dev/null || { echo "minbase: debootstrap not installed (apt-get install debootstrap)" >&2; return; }
    local mirror; mirror=$(awk '/^URIs:/ {print $2; exit} /^deb / {print $2; exit}' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1)
    echo "# debootstrap --variant=minbase bookworm from $mirror (cached in $MINBASE_TAR)" >&2
    local d; d=$(dirname "$MINBASE_TAR"); mkdir -p "$d"
    debootstrap --variant=minbase bookworm "$d/rootfs" "$mirror" >"$d/debootstrap.log" 2>&1 || { echo "minbase: debootstrap could not reach $mirror: $(tail -2 "$d/debootstrap.log")" >&2; return; }
    tar -C "$d/rootfs" --numeric-owner -cf "$MINBASE_TAR" .
  fi
  # One OCI archive both sides start from: berth import, then berth save.
  local imp=$M/imp; rm -rf "$imp"
  berth_unset --root "$imp" --progress none import --compress -c 'CMD ["bash"]' "$MINBASE_TAR" bench/minbase:1 >/dev/null
  berth_unset --root "$imp" --progress none save --format oci -o "$M/minbase.oci.tar" bench/minbase:1 >/dev/null
  local ctx=$M/ctx-minbase; mkdir -p "$ctx"
  printf 'FROM bench/minbase:1\nRUN echo one > /one && ls /usr/bin > /listing\nRUN dpkg -l > /pkgs\nRUN sh -c "echo three > /three"\n' >"$ctx/Dockerfile"
  printf 'FROM localhost/bench/minbase:1\nRUN echo one > /one && ls /usr/bin > /listing\nRUN dpkg -l > /pkgs\nRUN sh -c "echo three > /three"\n' >"$ctx/Dockerfile.buildah"
  for r in $(seq "$ROUNDS"); do
    for ca in unset set; do
      local root=$M/mb-$ca; rm -rf "$root"
      t "mb.berth.$ca.load" berth_$ca --root "$root" load -q -i "$M/minbase.oci.tar"
      t "mb.berth.$ca.build" berth_$ca --root "$root" build --builder builtin -q -t x "$ctx"
      echo "mb.berth.$ca.total $(( $(awk -v k="mb.berth.$ca.load" '$1==k {v=$2} END {print v}' "$R") + $(awk -v k="mb.berth.$ca.build" '$1==k {v=$2} END {print v}' "$R") ))" >>"$R"
      rm -rf "$root"
    done
    buildah_fresh "$M/buildah"
    t mb.buildah.pull "${BA[@]}" pull -q "oci-archive:$M/minbase.oci.tar"
    "${BA[@]}" tag "$("${BA[@]}" images -q | head -1)" localhost/bench/minbase:1 >/dev/null
    t mb.buildah.build "${BA[@]}" bud --isolation chroot --layers -f "$ctx/Dockerfile.buildah" -t x "$ctx"
    echo "mb.buildah.total $(( $(awk '$1=="mb.buildah.pull" {v=$2} END {print v}' "$R") + $(awk '$1=="mb.buildah.build" {v=$2} END {print v}' "$R") ))" >>"$R"
    buildah_drop "$M/buildah"
  done
  echo "minbase: Debian bookworm minbase ($(du -m "$MINBASE_TAR" | cut -f1) MB tar) + 3 RUN, from one OCI archive, $ROUNDS rounds, medians"
  for ca in unset set; do
    line "berth load (CA $ca)" "mb.berth.$ca.load"
    line "berth build, unpacks the base (CA $ca)" "mb.berth.$ca.build"
    line "berth load + build (CA $ca)" "mb.berth.$ca.total"
  done
  line "buildah pull (unpacks the base)" mb.buildah.pull
  line "buildah bud" mb.buildah.build
  line "buildah pull + bud" mb.buildah.total
  for ca in unset set; do
    echo "  CA $ca: berth/buildah load+build vs pull+bud $(ratio mb.berth.$ca.total mb.buildah.total) (target <= 0.8); build alone vs bud alone $(ratio mb.berth.$ca.build mb.buildah.build)"
  done
}

# ---------------------------------------------------------------- rss: a 1 GB context
rss() {
  python3 ../shared/build-corpus/make-base.py "$M/base-rss" >/dev/null
  local ctx=$M/ctx-big; mkdir -p "$ctx/small"
  head -c 1000000000 /dev/urandom >"$ctx/big.bin"
  for i in $(seq 2000); do echo "small $i" >"$ctx/small/s$i.txt"; done
  printf 'FROM base\nCOPY . /ctx\n' >"$ctx/Dockerfile"
  echo "rss: context of one 1 GB file + 2000 small files, COPY . /ctx, berth peak RSS (VmHWM)"
  for ca in unset set; do
    local root=$M/rss-$ca; rm -rf "$root"
    berth_$ca --root "$root" load -q --dir "$M/base-rss" >/dev/null
    if [ "$ca" = unset ]; then env -u NODE_EXTRA_CA_CERTS /usr/bin/time -f '%M %e' -o "$W/rss" node "$REPO/bin/berth.js" --root "$root" build --builder builtin -q -t big "$ctx" >/dev/null
    else NODE_EXTRA_CA_CERTS=$CA /usr/bin/time -f '%M %e' -o "$W/rss" node "$REPO/bin/berth.js" --root "$root" build --builder builtin -q -t big "$ctx" >/dev/null; fi
    printf '  CA %-5s peak RSS %4d MB (target <= 200 MB), wall %s s\n' "$ca" "$(( $(awk '{print $1}' "$W/rss") / 1024 ))" "$(awk '{print $2}' "$W/rss")"
    rm -rf "$root"
  done
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; berth $(node -p 'require("./package.json").version'), buildah $(buildah --version | awk '{print $3}')$([ "$HAVE_BK" = 1 ] && echo ", buildctl $("$BUILDCTL" --version | awk '{print $3}') at $BK")"
for c in $CASES; do "$c"; done
