#!/usr/bin/env bash
# Installs the Debian packages flowgres needs, only those missing (idempotent). Runs
# `apt-get update` first whenever it installs anything. As an ordinary user it uses sudo.
# python3 runs the integration tests, nodejs/npm the OpenAPI validator, prometheus gives
# promtool, wrk and nginx-light are the benchmark's load generator and HTTP-floor peer,
# chromium runs the public page's browser tests (driven by npm playwright-core).
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    postgresql-15 postgresql-server-dev-15 postgresql-client-15 libpq-dev
    libuv1-dev libjansson-dev libssl-dev libc-ares-dev libre2-dev libidn2-dev node-llhttp libjemalloc-dev
    postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
    libgtest-dev libbenchmark-dev
    python3 python3-cryptography nodejs npm prometheus wrk nginx-light curl jq chromium pebble
)

missing=()
for package in "${packages[@]}"; do
    # A Node.js from elsewhere (with its own npm) serves as well as Debian's; installing
    # Debian's npm beside it would fight over the node binary.
    [ "$package" = nodejs ] && command -v node >/dev/null && continue
    [ "$package" = npm ] && command -v npm >/dev/null && continue
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
