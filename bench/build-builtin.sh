#!/usr/bin/env bash
# Built-in builder benchmark (run as root, after `npm run build`): berth's builder against
# `buildah bud` (overlay driver, --isolation chroot: its fastest set-up here), interleaved rounds.
# Cases: a cold build of a 5 RUN / 3 COPY Dockerfile on the corpus base; a rebuild with nothing
# changed; a rebuild after one file under the last COPY changed (only that step and later run).
# The berth time includes node's start (one process per build, like the CLI).
#   ROUNDS=5 bash bench/build-builtin.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
[ "$(id -u)" = 0 ] || { echo "bench/build-builtin.sh must run as root" >&2; exit 1; }
[ -f dist/build/native/index.js ] || npm run build >/dev/null
HAVE_BUILDAH=1
command -v buildah >/dev/null || { HAVE_BUILDAH=0; echo "buildah not installed (apt-get install buildah): berth only" >&2; }

WORK=/tmp/berth-bench-build.$$; rm -rf "$WORK"; mkdir -p "$WORK"  # lower case: buildah names oci: images by path
trap 'rm -rf "$WORK"' EXIT
python3 ../shared/build-corpus/make-base.py "$WORK/base" >/dev/null
CTX=$WORK/ctx
mkdir -p "$CTX/src"
for i in 1 2 3; do echo "file $i" >"$CTX/src/f$i.txt"; done
cat >"$CTX/Dockerfile" <<'DF'
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

ms() { local t0=$(date +%s%N); "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - t0) / 1000000 )); }

berth_round() {  # fresh root each round
  local r=$WORK/berth-root
  rm -rf "$r"; node bench/build-builtin.mjs "$r" "$CTX" x --base-layout "$WORK/base"
  echo "berth cold $(ms node bench/build-builtin.mjs "$r" "$CTX" x) ms"
  echo "berth nochange $(ms node bench/build-builtin.mjs "$r" "$CTX" x) ms"
  echo "round $RANDOM" >"$CTX/src/f3.txt"
  echo "berth onechange: $(node bench/build-builtin.mjs "$r" "$CTX" x)"
}

buildah_round() {
  local s=$WORK/buildah
  rm -rf "$s"; mkdir -p "$s"
  local B=(buildah --root "$s/root" --runroot "$s/run" --storage-driver overlay)
  "${B[@]}" pull -q "oci:$WORK/base:base" >/dev/null
  "${B[@]}" tag "$("${B[@]}" images -q | head -1)" localhost/base >/dev/null
  sed 's/^FROM base$/FROM localhost\/base/' "$CTX/Dockerfile" >"$CTX/Dockerfile.buildah"
  echo "buildah cold $(ms "${B[@]}" bud --isolation chroot --layers -f "$CTX/Dockerfile.buildah" -t x "$CTX") ms"
  echo "buildah nochange $(ms "${B[@]}" bud --isolation chroot --layers -f "$CTX/Dockerfile.buildah" -t x "$CTX") ms"
  "${B[@]}" rm -a >/dev/null 2>&1 || true
  rm -rf "$s" 2>/dev/null || { umount -R "$s" 2>/dev/null; rm -rf "$s"; }
}

for i in $(seq "$ROUNDS"); do
  berth_round
  [ "$HAVE_BUILDAH" = 1 ] && buildah_round
done
