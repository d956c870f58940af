#!/usr/bin/env bash
# Installs the built extension into PostgreSQL 15 (library, control file, SQL scripts). Skips
# files that are already installed unchanged; uses sudo only when the directories are not
# writable by the caller (PostgreSQL 15 has no per-user extension directory).
set -euo pipefail
cd "$(dirname "$0")/../extension"

libdir=$(pg_config --pkglibdir)
sharedir=$(pg_config --sharedir)/extension
up_to_date=true
cmp -s flowgres.so "$libdir/flowgres.so" || up_to_date=false
cmp -s flowgres.control "$sharedir/flowgres.control" || up_to_date=false
for script in ../sql/flowgres--*.sql; do
    cmp -s "$script" "$sharedir/$(basename "$script")" || up_to_date=false
done
$up_to_date && exit 0

if [ -w "$libdir" ] && [ -w "$sharedir" ]; then
    make -s install >/dev/null
elif command -v sudo >/dev/null; then
    sudo make -s install >/dev/null
else
    echo "install-extension: $libdir is not writable and sudo is missing; run 'make install' as root" >&2
    exit 1
fi
