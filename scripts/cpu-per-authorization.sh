#!/usr/bin/env bash
# Instructions per authorization of the manager against its two signature operations
# (BENCHMARKS.md, "CPU per authorization against its two signature operations"), counted with
# callgrind on the release build:
#   1. one pair (Ed25519 verification + P-256 signature): `bench --signatures` 400 vs 200,
#      PAIR_RUNS times (each run draws its own keys, and Ed25519 verification time depends on
#      them), and their mean;
#   2. the manager (SQLite, 10,000 instances) under callgrind while a bench runs its timed
#      authorization phase; dump 1 before the phase, dump 2 at its end, so dump 2 holds the phase
#      alone, divided by the phase's authorizations (its "authorize | 10000" row).
# Prints both figures and the ratio; the dumps stay in OUT for `callgrind_annotate`.
#
# Usage: cargo build --release -p smartlic && scripts/cpu-per-authorization.sh
# Environment: SMARTLIC (binary, default target/release/smartlic), SECONDS_PHASE (30),
#              PAIR_RUNS (3), SKIP_PAIR=1 skips step 1, OUT (directory kept for the dumps,
#              default a new one in /tmp).
set -euo pipefail

cd "$(dirname "$0")/.."
B=$(realpath "${SMARTLIC:-target/release/smartlic}")
[[ -x $B ]] || { echo "no $B: run 'cargo build --release -p smartlic' first" >&2; exit 1; }
OUT=${OUT:-$(mktemp -d /tmp/smartlic-cpu-auth.XXXXXX)}
mkdir -p "$OUT"
cd "$OUT"

# Instructions counted in a callgrind dump.
total() { awk '/^totals:/ {print $2}' "$1"; }

if [[ ${SKIP_PAIR:-0} != 1 ]]; then
    SUM=0
    for run in $(seq "${PAIR_RUNS:-3}"); do
        for n in 200 400; do
            valgrind --tool=callgrind --callgrind-out-file=sig$n.$run.out "$B" bench --signatures $n >/dev/null 2>&1
        done
        ONE=$(( ($(total sig400.$run.out) - $(total sig200.$run.out)) / 200 ))
        echo "one pair, run $run: $ONE instructions"
        SUM=$((SUM + ONE))
    done
    PAIR=$((SUM / ${PAIR_RUNS:-3}))
    echo "one pair, mean: $PAIR instructions"
fi

BENCH=
# The bench kills its manager when interrupted: nothing is left running if this script stops.
trap '[[ -n $BENCH ]] && kill -INT "$BENCH" 2>/dev/null; true' EXIT
: > bench.log
"$B" bench --server-wrapper "valgrind --tool=callgrind --callgrind-out-file=$OUT/server.%p.out" \
    --instances 10000 --register-at-most 500 --seconds "${SECONDS_PHASE:-30}" --concurrency 8 > bench.log 2>&1 &
BENCH=$!
until grep -q "bench: authorizing for" bench.log; do sleep 0.2; kill -0 $BENCH; done
PID=$(grep -o "pid [0-9]*" bench.log | head -1 | cut -d' ' -f2)
callgrind_control -d "$PID" >/dev/null 2>&1 # dump 1: everything before the phase
until grep -q "GET /health" bench.log; do sleep 0.2; kill -0 $BENCH; done
callgrind_control -d "$PID" >/dev/null 2>&1 # dump 2: the phase
wait $BENCH
BENCH=
DUMP=$(ls server.$PID.out.2)
AUTHS=$(awk -F'|' '/^\| *authorize *\| *10000/ {gsub(/[ ,]/, "", $4); print $4; exit}' bench.log)
PHASE=$(total "$DUMP")
echo "phase: $PHASE instructions for $AUTHS authorizations: $((PHASE / AUTHS)) per authorization"
if [[ -n ${PAIR:-} ]]; then
    awk -v a="$((PHASE / AUTHS))" -v p="$PAIR" 'BEGIN { printf "ratio: %.3f\n", a / p }'
fi
echo "dumps and log in $OUT; inclusive costs: callgrind_annotate --inclusive=yes $OUT/$DUMP"
