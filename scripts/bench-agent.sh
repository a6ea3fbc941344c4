#!/usr/bin/env bash
# Speed and size of the smart agent (BENCHMARKS.md, "Smart agent"):
#   1. one-shot `smartlic agent --state DIR -c 'show license status'` on a registered and on an
#      unregistered device: RUNS runs each, median and p90 wall time (and hyperfine if installed);
#   2. the daemon's (`smartlic agent run`) resident memory from /proc while idle, during
#      RENEW_AUTH `renewAuth` and RENEW_ID `renewID` calls of its product REST API, and after.
#
# It starts its own manager (`smartlic server --clock simulated`) on a free loopback port with a
# fresh data directory in a temporary directory, and kills it (and the daemon) on exit.
# Everything is on 127.0.0.1; every wait is bounded.
#
# Usage: cargo build --release -p smartlic && scripts/bench-agent.sh
# Environment: SMARTLIC (binary, default target/release/smartlic), RUNS (50), RENEW_AUTH (200),
#              RENEW_ID (5), KEEP=1 keeps the temporary directory.
set -euo pipefail

cd "$(dirname "$0")/.."
SL=$(realpath "${SMARTLIC:-target/release/smartlic}")
RUNS=${RUNS:-50}
RENEW_AUTH=${RENEW_AUTH:-200}
RENEW_ID=${RENEW_ID:-5}
[[ -x $SL ]] || { echo "no $SL: run 'cargo build --release -p smartlic' first" >&2; exit 1; }

WORK=$(mktemp -d /tmp/smartlic-bench-agent.XXXXXX)
SERVER_PID=
DAEMON_PID=
cleanup() {
    set +e # a killed child's status must not end the clean-up early
    local pid
    for pid in $DAEMON_PID $SERVER_PID; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for SECONDS COMMAND...: retries COMMAND every 0.1 s until it succeeds or time runs out.
wait_for() {
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { echo "timed out waiting for: $*" >&2; return 1; }
        sleep 0.1
    done
}

# ---- manager, account, licenses, token --------------------------------------------------------
PORT=$(free_port)
DATA=$WORK/data
export SMARTLIC_ADMIN_SECRET=bench-agent-secret-0123456789
export SMARTLIC_SERVER=https://127.0.0.1:$PORT SMARTLIC_CA=$DATA/ca.pem
"$SL" server --clock simulated --data "$DATA" --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_for 30 curl -sf -m 2 --cacert "$DATA/ca.pem" "https://127.0.0.1:$PORT/health"

"$SL" admin account create --domain example.com --name "Example Inc" >/dev/null
"$SL" admin license add --account example.com --va Default --tag "ACI Essentials" --count 100 >/dev/null
TOKEN=$("$SL" admin token create --account example.com --va Default --description bench --expires-days 30)

# ---- devices ----------------------------------------------------------------------------------
REG=$WORK/registered
UNREG=$WORK/unregistered
"$SL" agent --state "$UNREG" init --pid APIC-SERVER-M3 --sn FCH2001V0AA --hostname apic0 >/dev/null
"$SL" agent --state "$REG" init --pid APIC-SERVER-M3 --sn FCH2001V0AB --hostname apic1 >/dev/null
"$SL" agent --state "$REG" -c 'crypto pki trustpoint SLA-TrustPoint' -c 'enrollment terminal' \
    -c 'revocation-check none' -c 'end' -c 'crypto pki authenticate SLA-TrustPoint' <"$DATA/ca.pem" >/dev/null
"$SL" agent --state "$REG" -c "license smart url https://127.0.0.1:$PORT" \
    -c "license smart register idtoken $TOKEN" -c 'license feature "ACI Essentials" count 2' >/dev/null
"$SL" agent --state "$UNREG" -c 'license feature "ACI Essentials" count 2' >/dev/null
STATUS=$("$SL" agent --state "$REG" -c 'show license status')
grep -q 'Status: REGISTERED' <<<"$STATUS" && grep -q 'Status: AUTHORIZED' <<<"$STATUS" \
    || { echo "the device did not register:" >&2; echo "$STATUS" >&2; exit 1; }
echo "state directory: $(du -sh "$REG" | cut -f1) ($(ls "$REG" | tr '\n' ' '))"

# ---- 1. one-shot show -------------------------------------------------------------------------
# Wall time of each run from bash's $EPOCHREALTIME (no extra process), output discarded.
oneshot() {
    local dir=$1 name=$2 i t0 t1 times=()
    "$SL" agent --state "$dir" -c 'show license status' >/dev/null # warm the page cache
    for ((i = 0; i < RUNS; i++)); do
        t0=$EPOCHREALTIME
        "$SL" agent --state "$dir" -c 'show license status' >/dev/null
        t1=$EPOCHREALTIME
        times+=("$(((${t1/./} - ${t0/./})))") # microseconds
    done
    printf '%s\n' "${times[@]}" | sort -n | awk -v name="$name" -v n="$RUNS" '
        { t[NR] = $1 }
        END {
            p50 = t[int((n + 1) / 2)]; p90 = t[int(n * 0.9 + 0.999999)]
            printf "one-shot show license status, %-12s runs %d  median %.1f ms  p90 %.1f ms  min %.1f ms  max %.1f ms\n",
                name, n, p50 / 1000, p90 / 1000, t[1] / 1000, t[n] / 1000
        }'
}
oneshot "$REG" registered
oneshot "$UNREG" unregistered
if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 3 --runs "$RUNS" --style basic \
        -n registered "$SL agent --state $REG -c 'show license status'" \
        -n unregistered "$SL agent --state $UNREG -c 'show license status'" \
        --export-json "$WORK/hyperfine.json" >/dev/null 2>&1 \
        && jq -r '.results[] | "hyperfine \(.command): median \(.median * 1e6 | round) µs, mean \(.mean * 1e6 | round) µs ± \(.stddev * 1e6 | round), user \(.user * 1e6 | round) µs, system \(.system * 1e6 | round) µs"' \
            "$WORK/hyperfine.json"
fi
# Instructions of one run (CALLGRIND=1; deterministic, unlike wall time on a shared machine).
if [[ ${CALLGRIND:-0} == 1 ]] && command -v valgrind >/dev/null; then
    for dir in "$REG" "$UNREG"; do
        valgrind --tool=callgrind --callgrind-out-file=/dev/null "$SL" agent --state "$dir" \
            -c 'show license status' 2>&1 >/dev/null | awk -v d="${dir##*/}" '/Collected/ { printf "callgrind one-shot show, %-12s %d instructions\n", d, $4 }'
    done
fi

# ---- 2. the daemon's resident memory ----------------------------------------------------------
APORT=$(free_port)
API=http://127.0.0.1:$APORT/api/v1/smartlicensing
"$SL" agent --state "$REG" run --listen "127.0.0.1:$APORT" >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
wait_for 30 curl -sf -m 2 "$API/licensedetails"

mem() { # mem LABEL: VmRSS and VmHWM of the daemon
    awk -v label="$1" '/^VmRSS|^VmHWM|^RssAnon|^RssFile/ { v[$1] = $2 }
        END { printf "daemon %-28s VmRSS %6.1f MiB  VmHWM %6.1f MiB  (anon %5.1f, file %5.1f)\n",
              label, v["VmRSS:"] / 1024, v["VmHWM:"] / 1024, v["RssAnon:"] / 1024, v["RssFile:"] / 1024 }' \
        "/proc/$DAEMON_PID/status"
}
sleep 3
mem "idle (3 s after start)"
failed=0
t0=$EPOCHREALTIME
for ((i = 1; i <= RENEW_AUTH; i++)); do
    curl -sf -m 30 -X POST "$API/renewAuth" >/dev/null || failed=$((failed + 1))
    ((i % 50 == 0)) && mem "after $i renewAuth"
done
t1=$EPOCHREALTIME
echo "renewAuth: $RENEW_AUTH calls, $failed failed, $(((${t1/./} - ${t0/./}) / RENEW_AUTH)) µs each (sequential, manager on the same machine)"
for ((i = 1; i <= RENEW_ID; i++)); do
    curl -sf -m 30 -X POST "$API/renewID" >/dev/null || failed=$((failed + 1))
done
mem "after $RENEW_ID renewID"
sleep 5
mem "idle again (5 s later)"
curl -sf -m 5 "$API/licensedetails" | jq -c '{registration: .registration.status, authorization: .authorization.status}' 2>/dev/null || true
echo "largest resident mappings (pmap -x; KiB: size, RSS, dirty):"
pmap -x "$DAEMON_PID" | awk '$1 == "total" { total = $0 } NR > 2 && $1 != "total" && $3 ~ /^[0-9]+$/ { print }
    END { print total > "/dev/stderr" }' 2>"$WORK/pmap.total" | sort -k3 -n -r | head -8
cat "$WORK/pmap.total"
echo "threads: $(ls /proc/$DAEMON_PID/task | wc -l)"
if command -v smem >/dev/null; then
    smem -k -c 'pid uss pss rss' | awk -v p="$DAEMON_PID" '$1 == p { print "smem: USS " $2 ", PSS " $3 ", RSS " $4 }'
fi
((failed == 0)) || { echo "$failed REST calls failed" >&2; exit 1; }
