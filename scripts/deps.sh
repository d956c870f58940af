#!/usr/bin/env bash
# Installs the Debian packages flowgres needs, only those missing (idempotent). Runs
# `apt-get update` first whenever it installs anything. As an ordinary user it uses sudo.
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    postgresql-15 postgresql-server-dev-15 postgresql-client-15 libpq-dev
    libuv1-dev libjansson-dev libssl-dev libc-ares-dev node-llhttp
    postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
    libgtest-dev libbenchmark-dev
)

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
