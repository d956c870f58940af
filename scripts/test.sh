#!/usr/bin/env bash
# `make test`: every suite against a throwaway cluster (never ./var/). Prints each suite's
# output, then one closing line "N passed, N failed" over all of them.
set -uo pipefail
cd "$(dirname "$0")/.."

root=$(mktemp -d /tmp/flowgres-test.XXXXXX)
chmod 755 "$root"
# A free port: start from a random one in a private range and step past any in use.
port=$((40000 + RANDOM % 20000))
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done

cleanup() {
    scripts/cluster.sh down "$root/cluster" >/dev/null 2>&1 || true
    rm -rf "$root"
}
trap cleanup EXIT

passed=0
failed=0

echo "== unit (ctest)"
ctest_output=$(ctest --test-dir build --output-on-failure 2>&1)
echo "$ctest_output" | tail -n 30
ctest_total=$(echo "$ctest_output" | sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p')
ctest_failed=$(echo "$ctest_output" | sed -n 's/.*, \([0-9]*\) tests failed out of.*/\1/p')
if [ -z "$ctest_total" ]; then
    failed=$((failed + 1))
else
    passed=$((passed + ctest_total - ctest_failed))
    failed=$((failed + ctest_failed))
fi

echo "== pgTAP (pg_prove)"
# The maintenance worker watches the test database, briskly, so its tests finish quickly.
export FLOWGRES_CLUSTER_SETTINGS="flowgres.database = 'flowgres_test'
flowgres.maintenance_interval_ms = 200
flowgres.execution_heartbeat_timeout_ms = 2000"
if ! scripts/cluster.sh up "$root/cluster" "$port"; then
    echo "the test cluster did not start; its log ends with:"
    tail -n 30 "$root/cluster/log/"*.log 2>/dev/null
    # One more try on another port (another process may have taken this one meanwhile).
    port=$((port + 1))
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    scripts/cluster.sh down "$root/cluster" >/dev/null 2>&1 || true
    rm -rf "$root/cluster"
    scripts/cluster.sh up "$root/cluster" "$port" || { echo "the test cluster did not start twice"; echo "0 passed, 1 failed"; exit 1; }
fi
unset FLOWGRES_CLUSTER_SETTINGS
socket="$root/cluster/sock"
psql_test() { psql -h "$socket" -p "$port" -U postgres -v ON_ERROR_STOP=1 -q "$@"; }
psql_test -d postgres -c "create database flowgres_test"
psql_test -d flowgres_test -c "create extension pgtap" -c "create extension flowgres" -f tests/pgtap/setup/helpers.sql
export FLOWGRES_TEST_SOCKET=$socket FLOWGRES_TEST_PORT=$port
prove_output=$(pg_prove -h "$socket" -p "$port" -U postgres -d flowgres_test tests/pgtap/*.sql 2>&1)
echo "$prove_output" | grep -v "^\s*ok\b" | tail -n 60
tap_total=$(echo "$prove_output" | sed -n 's/^Files=[0-9]*, Tests=\([0-9]*\),.*/\1/p')
tap_failed=$(echo "$prove_output" | sed -n 's/.*Failed \([0-9]*\)\/[0-9]* subtests.*/\1/p' | awk '{sum += $1} END {print sum + 0}')
tap_failed=${tap_failed:-0}
if [ -z "$tap_total" ]; then
    failed=$((failed + 1))
else
    # A file that died before its plan counts as one failure more than its failed subtests.
    bad_files=$(echo "$prove_output" | grep -cE "Wstat: [1-9]|Bad plan|No plan found" || true)
    passed=$((passed + tap_total - tap_failed))
    failed=$((failed + tap_failed + bad_files))
fi

echo "== upgrade path: every released version, one step at a time"
# Released scripts are never edited: a database made at 0.1 and updated one version at a time,
# with rows written at each step, must end with the catalog of a fresh install (relations,
# columns, constraints, indexes, policies, privileges, function bodies, comments).
latest=$(sed -n "s/^default_version = '\(.*\)'/\1/p" extension/flowgres.control)
versions=$(ls sql/flowgres--*--*.sql | sed -n 's/.*flowgres--\(.*\)--\(.*\)\.sql/\1 \2/p')
upgrade_ok=true
step=0.1
psql_test -d postgres -c "create database flowgres_upgrade" &&
    psql_test -d flowgres_upgrade -c "create extension flowgres version '0.1'" || upgrade_ok=false
while $upgrade_ok && [ "$step" != "$latest" ]; do
    # Compared as strings: numerically 0.1 and 0.10 are equal.
    next=$(echo "$versions" | awk -v from="$step" '($1 "") == (from "") { print $2 }')
    if [ -z "$next" ]; then echo "no upgrade script leaves $step"; upgrade_ok=false; break; fi
    # Rows at each step, so that an upgrade meets data: a user, their workspace, an app.
    psql_test -d flowgres_upgrade -c "select flowgres.user_create('upgrade-$step@example.com', 'Upgrade $step')" \
        -c "alter extension flowgres update to '$next'" >/dev/null || { echo "updating $step → $next failed"; upgrade_ok=false; }
    step=$next
done
if $upgrade_ok && diff <(psql_test -d flowgres_upgrade -At -f tests/upgrade/catalog.sql) \
        <(psql_test -d flowgres_test -At -f tests/upgrade/catalog.sql) >"$root/catalog.diff"; then
    echo "ok: 0.1 updates step by step to $latest and holds what a fresh install holds"
    passed=$((passed + 1))
else
    echo "not ok: the upgrade path is broken"
    head -n 40 "$root/catalog.diff" 2>/dev/null
    failed=$((failed + 1))
fi

# Integration suites (Python, standard library only) start their own flowgresd against this
# cluster and print "N passed, N failed" last; each suite's counts are added.
for suite in tests/integration/*_test.py; do
    [ -e "$suite" ] || continue
    echo "== integration: $suite"
    suite_output=$(timeout 600 /usr/bin/python3 "$suite" 2>&1)
    suite_status=$?
    echo "$suite_output" | grep -E "^(FAIL|ERROR):|^(AssertionError|Traceback)|passed, .* failed" | tail -n 40
    [ $suite_status -ne 0 ] && echo "$suite_output" | tail -n 60
    counts=$(echo "$suite_output" | tail -n 1 | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')
    if [ -z "$counts" ]; then
        failed=$((failed + 1))
    else
        passed=$((passed + ${counts% *}))
        failed=$((failed + ${counts#* }))
        [ $suite_status -ne 0 ] && [ "${counts#* }" -eq 0 ] && failed=$((failed + 1))
    fi
done

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
