#!/usr/bin/env bash
# Where lanner's time goes per message, next to Redis doing the same work: the figures behind
# docs/performance.md. Loopback only; every run is bounded by a count or a duration (~6 minutes).
#
#   scripts/profile.sh                      # builds lanner and lanner-bench (release) first
#   LANNER_BIN=path scripts/profile.sh      # profile that binary instead
#
# For each workload it records, on the server process only:
#   - CPU time per message (utime+stime from /proc/<pid>/stat; lanner-bench reports it),
#   - syscalls and context switches per message (perf stat on syscall tracepoints; no
#     hardware counters are needed, which this VM does not have),
# then a flat CPU profile of lanner (perf record -e cpu-clock), heap allocations per message
# (valgrind --tool=dhat, the difference between a 10k and a 30k message run) and user-space
# instructions per message by function (valgrind --tool=callgrind, same difference).
# It also measures a restart with 1,000,000 x 1 KiB queued under read-behind (bytes read and
# written by recovery, from /proc/<pid>/io) and the heap of 2,000 idle connections (dhat).
# PROFILE_PARTS="counts perf valgrind recovery idle" selects parts.
# Output: target/profile/<timestamp>/ with profile.md (tables) and the raw files.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${PROFILE_OUT:-$ROOT/target/profile/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
LPORT=28133 RPORT=28379 VPORT=28134
log() { printf '[profile %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

for tool in perf valgrind redis-server jq python3; do
    command -v "$tool" >/dev/null || { echo "profile.sh needs $tool (apt-get install linux-perf valgrind redis-server jq)" >&2; exit 1; }
done
if [ -z "${LANNER_BIN:-}" ]; then
    cargo build --release -q --bin lanner --bin lanner-bench
    LANNER_BIN=$ROOT/target/release/lanner
else
    cargo build --release -q -p lanner-bench
fi
BENCH=$ROOT/target/release/lanner-bench
perf stat -e task-clock true >/dev/null 2>&1 || { echo "perf cannot count here" >&2; exit 1; }

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do alive "$pid" && kill -TERM "$pid" 2>/dev/null; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# start NAME SYNC: a fresh lanner or Redis; sets PID ADDR PROTO.
start() {
    local name=$1 sync=$2 dir=$OUT/data-$1-$2-$RANDOM
    rm -rf "$dir"
    mkdir -p "$dir"
    if [ "$name" = lanner ]; then
        printf '[default]\nsync = "%s"\n' "$sync" >"$dir.toml"
        "$LANNER_BIN" --listen "127.0.0.1:$LPORT" --text-listen= --admin-listen= --data-dir "$dir" --config "$dir.toml" >"$dir.log" 2>&1 &
        PID=$! ADDR=127.0.0.1:$LPORT PROTO=kestrel
        until grep -q 'lanner listening on' "$dir.log"; do alive "$PID" || exit 1; sleep 0.05; done
    else
        local fsync=everysec
        [ "$sync" = always ] && fsync=always
        redis-server --bind 127.0.0.1 --port "$RPORT" --dir "$dir" --appendonly yes --appendfsync "$fsync" \
            --save '""' --daemonize no --logfile "$dir.log" &
        PID=$! ADDR=127.0.0.1:$RPORT PROTO=redis
        until [ "$(redis-cli -p "$RPORT" ping 2>/dev/null)" = PONG ]; do alive "$PID" || exit 1; sleep 0.05; done
    fi
    PIDS+=("$PID")
}
stop() { kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; }

EVENTS=syscalls:sys_enter_read,syscalls:sys_enter_recvfrom,syscalls:sys_enter_write,syscalls:sys_enter_sendto
EVENTS+=,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,syscalls:sys_enter_fdatasync
EVENTS+=,syscalls:sys_enter_mprotect,syscalls:sys_enter_brk,syscalls:sys_enter_mmap,context-switches

# measure LABEL SUBCOMMAND ARGS...: one bench run with perf stat on the server; appends a JSON
# object (bench figures + counters) to counts.jsonl.
measure() {
    local label=$1
    shift
    perf stat -x, -e "$EVENTS" -p "$PID" -o "$OUT/stat.txt" &
    local perf=$!
    sleep 0.3
    local line
    line=$("$BENCH" "$@" --proto "$PROTO" --addr "$ADDR" --pid "$PID" --label "$label" 2>>"$OUT/bench.log" | grep '^{' | tail -1)
    kill -INT "$perf"
    wait "$perf" || true
    local counters
    counters=$(awk -F, '/^[0-9]/ {gsub(/syscalls:sys_enter_/, "", $3); printf "\"%s\":%s,", $3, $1}' "$OUT/stat.txt")
    printf '%s\n' "$line" | jq -c ". + {counters: {${counters%,}}}" >>"$OUT/counts.jsonl"
    log "$label $(printf '%s' "$line" | jq -r '.server + ": " + (.msgs_per_s|tostring) + " msg/s"')"
}

PARTS=${PROFILE_PARTS:-counts perf valgrind recovery idle}
part() { [[ " $PARTS " == *" $1 "* ]]; }

: >"$OUT/counts.jsonl"
part counts && for server in lanner redis; do
    start "$server" 100ms
    measure "produce 8x16" produce --connections 8 --pipeline 16 --messages 400000 --queue p
    measure "consume 8x16" consume --connections 8 --pipeline 16 --messages 400000 --queue p
    measure "produce 1x1" produce --connections 1 --pipeline 1 --messages 30000 --queue s
    measure "consume 1x1" consume --connections 1 --pipeline 1 --messages 30000 --queue s
    measure "mixed 4+4 paced" mixed --duration 5 --rate 20000 --messages 100000000 --queue m
    measure "reliable prefill" produce --connections 8 --pipeline 16 --messages 100000 --queue r
    measure "reliable 8x1" reliable --connections 8 --pipeline 1 --messages 100000 --queue r
    stop
    start "$server" always
    measure "sync-always 64x1" produce --connections 64 --pipeline 1 --duration 5 --messages 100000000 --queue a
    stop
done

part perf && log "perf record: flat profiles of lanner"
part perf && for what in "produce 8x16:100ms:produce --connections 8 --pipeline 16 --messages 1000000" \
    "mixed 4+4 paced:100ms:mixed --duration 5 --rate 20000 --messages 100000000" \
    "sync-always 64x1:always:produce --connections 64 --pipeline 1 --duration 5 --messages 100000000"; do
    IFS=: read -r label sync args <<<"$what"
    start lanner "$sync"
    file=$OUT/perf-${label// /_}.data
    perf record -e cpu-clock -F 1999 -p "$PID" -o "$file" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 0.3
    # shellcheck disable=SC2086
    "$BENCH" $args --addr "$ADDR" --pid "$PID" --queue f >/dev/null 2>>"$OUT/bench.log"
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    perf report -i "$file" --sort dso --stdio 2>/dev/null | grep '%' >"$file.dso.txt" || true
    perf report -i "$file" --sort dso,symbol --stdio 2>/dev/null | grep '%' | head -40 >"$file.symbols.txt" || true
    stop
done

# valgrind_run TOOL N: lanner under valgrind for a produce+consume of N messages (8x16).
valgrind_run() {
    local tool=$1 n=$2 dir=$OUT/vg-$1-$2
    rm -rf "$dir"
    mkdir -p "$dir"
    printf '[default]\nsync = "100ms"\n' >"$dir.toml"
    local extra=(--dhat-out-file="$dir.dhat.json")
    [ "$tool" = callgrind ] && extra=(--callgrind-out-file="$dir.callgrind.out")
    timeout 600 valgrind --tool="$tool" "${extra[@]}" "$LANNER_BIN" --listen "127.0.0.1:$VPORT" --text-listen= --admin-listen= \
        --data-dir "$dir" --config "$dir.toml" >"$dir.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    until grep -q 'lanner listening on' "$dir.log"; do alive "$pid" || exit 1; sleep 0.2; done
    "$BENCH" produce --addr "127.0.0.1:$VPORT" --connections 8 --pipeline 16 --messages "$n" --queue v >/dev/null 2>>"$OUT/bench.log"
    "$BENCH" consume --addr "127.0.0.1:$VPORT" --connections 8 --pipeline 16 --messages "$n" --queue v >/dev/null 2>>"$OUT/bench.log"
    kill -TERM "$pid"
    wait "$pid" || true
}
part valgrind && log "valgrind: allocations (dhat) and instructions (callgrind), 10k and 30k messages"
part valgrind && for tool in dhat callgrind; do
    valgrind_run "$tool" 10000
    valgrind_run "$tool" 30000
done
part valgrind && for n in 10000 30000; do
    callgrind_annotate --auto=no --threshold=100 "$OUT/vg-callgrind-$n.callgrind.out" >"$OUT/callgrind-$n.txt" 2>/dev/null || true
done

if part recovery; then
    log "recovery: 1,000,000 x 1 KiB queued with max_memory_size = 8MiB, SIGKILL, restart"
    dir=$OUT/recovery
    rm -rf "$dir"
    mkdir -p "$dir"
    printf '[default]\nsync = "100ms"\nmax_memory_size = "8MiB"\n' >"$dir.toml"
    "$LANNER_BIN" --listen "127.0.0.1:$LPORT" --text-listen= --admin-listen= --data-dir "$dir" --config "$dir.toml" >"$dir-1.log" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    until grep -q 'lanner listening on' "$dir-1.log"; do alive "$PID" || exit 1; sleep 0.05; done
    "$BENCH" produce --addr "127.0.0.1:$LPORT" --connections 8 --pipeline 16 --size 1024 --messages 1000000 --duration 600 >/dev/null 2>>"$OUT/bench.log"
    kill -KILL "$PID"
    wait "$PID" 2>/dev/null || true
    du -sb "$dir" >"$OUT/recovery-disk.txt"
    { ls -l "$dir" | grep -v '\.journal$'; echo "$(find "$dir" -name '*.journal' | wc -l) journal segments"; } >>"$OUT/recovery-disk.txt"
    "$LANNER_BIN" --listen "127.0.0.1:$LPORT" --text-listen= --admin-listen= --data-dir "$dir" --config "$dir.toml" >"$dir-2.log" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    until grep -q 'lanner listening on' "$dir-2.log"; do alive "$PID" || exit 1; sleep 0.01; done
    { grep -o 'recovery finished.*' "$dir-2.log"; cat "/proc/$PID/io"; grep -E 'VmHWM|VmRSS' "/proc/$PID/status"; } >"$OUT/recovery-io.txt"
    stop
    rm -rf "$dir"
fi

if part idle; then
    log "idle connections: heap of 2,000 idle connections (dhat)"
    for n in 0 2000; do
        dir=$OUT/idle-$n
        rm -rf "$dir"
        mkdir -p "$dir"
        printf '[default]\nsync = "100ms"\n' >"$dir.toml"
        timeout 600 valgrind --tool=dhat --dhat-out-file="$dir.dhat.json" "$LANNER_BIN" --listen "127.0.0.1:$VPORT" --text-listen= --admin-listen= \
            --data-dir "$dir" --config "$dir.toml" >"$dir.log" 2>&1 &
        pid=$!
        PIDS+=("$pid")
        until grep -q 'lanner listening on' "$dir.log"; do alive "$pid" || exit 1; sleep 0.2; done
        "$BENCH" fanin --addr "127.0.0.1:$VPORT" --connections 1 --messages 100 --idle "$n" >"$dir.json" 2>>"$OUT/bench.log"
        kill -TERM "$pid"
        wait "$pid" || true
    done
fi

python3 "$ROOT/scripts/profile_report.py" "$OUT" >"$OUT/profile.md"
log "done: $OUT/profile.md"
