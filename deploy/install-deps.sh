#!/bin/sh
# Installs the Debian 12 packages Linkage builds, runs and tests with, when
# any is missing. Called by `make run` and `make test`; safe to run again.
set -eu

# prometheus: for its promtool, which tests/integration/test_metrics.py runs on every /metrics.
PKGS="build-essential pkg-config libzmq3-dev libuv1-dev libprotobuf-c-dev protobuf-c-compiler
libsodium-dev libyaml-dev libpq-dev postgresql postgresql-contrib protobuf-compiler
python3 python3-zmq python3-protobuf python3-yaml libxml2-utils libmicrohttpd-dev libjson-c-dev
chromium chromium-driver python3-selenium fonts-wqy-zenhei nftables iptables libnetfilter-queue-dev
clang libclang-rt-14-dev clang-format clang-tidy cppcheck procps iproute2 util-linux
libsystemd-dev systemd prometheus"

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "linkage: missing Debian packages:$missing; install them with: sudo apt-get install -y$missing" >&2
  exit 1
fi
echo "linkage: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
