#!/usr/bin/env bash
# Installs the Debian 12 packages studyshare needs to build, test and run.
# Does nothing when they are all present; otherwise runs apt-get as root
# (apt-get update first, as a fresh machine has no package lists).
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
  libevent-dev libnng-dev libhiredis-dev libmsgpack-dev libsodium-dev
  libjansson-dev libjwt-dev libcurl4-openssl-dev libcmocka-dev libjemalloc-dev
  redis-server redis-tools prometheus python3 python3-aiosmtpd curl
  chromium wrk dcmtk orthanc orthanc-dicomweb docker-compose yamllint shellcheck
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
# Debian starts the packaged servers; the project runs its own on free ports.
for svc in redis-server prometheus prometheus-node-exporter orthanc; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true
done
