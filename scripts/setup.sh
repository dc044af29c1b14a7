#!/bin/sh
# Installs every Debian 12 package tcat needs (idempotent; run as root or with sudo available),
# then configures and builds tcat in Release into ./build.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="cmake ninja-build g++ pkg-config git libdnnl-dev libcli11-dev nlohmann-json3-dev libfmt-dev
libspdlog-dev libgtest-dev libgmock-dev libbenchmark-dev libsentencepiece-dev libutf8proc-dev libpcre2-dev"

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing$missing" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${TCAT_CMAKE_ARGS:-} >/dev/null
cmake --build build
