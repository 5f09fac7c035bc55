#!/usr/bin/env bash
# Installs the Debian packages brainmap builds against (idempotent; needs root or sudo).
set -euo pipefail
pkgs=(pkg-config libopenblas-dev libblosc-dev libcurl4-openssl-dev libtiff-dev libzstd-dev zlib1g-dev liblz4-dev libpng-dev)
pkgs+=("$@")
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq -o DPkg::Lock::Timeout=600
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi
