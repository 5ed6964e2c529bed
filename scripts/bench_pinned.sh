#!/usr/bin/env bash
# lanner against Redis with the server pinned to CPU 0 and lanner-bench to CPU 1, so that each
# has a core of its own (scripts/bench.sh shares both cores between them). Prints one line per
# load and writes the JSON lines, with the server's CPU seconds, to $OUT/results.jsonl.
#
#   scripts/bench_pinned.sh            # 3 repetitions, about 3 minutes
#
# Environment: BENCH_REPS (3), OUT (target/bench/pinned-<timestamp>), LANNER_BIN, BENCH_BIN.
# Needs redis-server (scripts/bench.sh installs it) and two CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${BENCH_REPS:-3}
OUT=${OUT:-$PWD/target/bench/pinned-$(date -u +%Y%m%dT%H%M%SZ)}
LANNER=${LANNER_BIN:-target/release/lanner}
BENCH=${BENCH_BIN:-target/release/lanner-bench}
[ -n "${LANNER_BIN:-}" ] || cargo build --release --quiet --bin lanner --bin lanner-bench
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start() { # server repetition sync
    DATA=$OUT/data-$1-$2
    rm -rf "$DATA"
    mkdir -p "$DATA"
    case $1 in
    lanner)
        printf '[default]\nsync = "%s"\n' "$3" >"$DATA.toml"
        TOKIO_WORKER_THREADS=1 taskset -c 0 "$LANNER" --listen 127.0.0.1:27133 --text-listen= \
            --admin-listen= --data-dir "$DATA" --config "$DATA.toml" >"$DATA.log" 2>&1 &
        PID=$! ADDR=127.0.0.1:27133 PROTO=kestrel
        until grep -q 'lanner listening on' "$DATA.log"; do sleep 0.05; done
        ;;
    redis)
        local fsync=everysec
        [ "$3" = always ] && fsync=always
        taskset -c 0 redis-server --bind 127.0.0.1 --port 27379 --dir "$DATA" --appendonly yes \
            --appendfsync "$fsync" --save "" --daemonize no >"$DATA.log" 2>&1 &
        PID=$! ADDR=127.0.0.1:27379 PROTO=redis
        until [ "$(redis-cli -p 27379 ping 2>/dev/null)" = PONG ]; do sleep 0.05; done
        ;;
    esac
}

stop() {
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    rm -rf "$DATA"
}

load() { # label subcommand args...
    local label=$1 sub=$2 before after line
    shift 2
    before=$(cpu_ticks "$PID")
    line=$(taskset -c 1 "$BENCH" "$sub" --proto "$PROTO" --addr "$ADDR" --label "$label" \
        --pid "$PID" "$@" 2>>"$OUT/bench.log" | grep '^{' | tail -1)
    after=$(cpu_ticks "$PID")
    printf '%s\n' "$line" | jq -c --argjson rep "$REP" --argjson ticks $((after - before)) \
        '. + {rep: $rep, server_cpu_s: ($ticks / 100)}' | tee -a "$RESULTS" |
        jq -r '"\(.server) \(.label): \(.msgs_per_s) msg/s, server CPU \(.server_cpu_s) s"'
}

for REP in $(seq "$REPS"); do
    for server in lanner redis; do
        start "$server" "$REP-interval" 100ms
        load "produce 8x16" produce --connections 8 --pipeline 16 --messages 400000
        load "consume 8x16" consume --connections 8 --pipeline 16 --messages 400000
        load "reliable prefill" produce --connections 8 --pipeline 16 --messages 200000
        load "reliable 8x1" reliable --connections 8 --pipeline 1 --messages 200000
        load "mixed 4+4" mixed --producers 4 --consumers 4 --duration 5 --messages 100000000
        stop
        start "$server" "$REP-always" always
        load "sync-always 64x1" produce --connections 64 --pipeline 1 --duration 5 --messages 100000000
        stop
    done
done
echo "results: $RESULTS"
