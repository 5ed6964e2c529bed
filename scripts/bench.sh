#!/usr/bin/env bash
# The full comparison benchmark: lanner against Redis (lists, AOF) and memcached, on loopback.
#
#   scripts/bench.sh                 # full run (about 8 minutes on 2 cores), writes docs/benchmarks.md
#   BENCH_QUICK=1 scripts/bench.sh   # small counts and 1 repetition: a trial of the script itself
#
# It installs the peers from Debian's packages when missing, builds lanner and lanner-bench
# (release), then runs every scenario against every server in alternation, REPS times, each run
# on a freshly started server with a fresh data directory, and renders the medians and ratios with
# scripts/bench_report.py. CI never runs this: it is slow and its numbers depend on the machine.
#
# Environment:
#   BENCH_REPS=3          repetitions of every scenario
#   BENCH_QUICK=0         1: tiny counts, 1 repetition, short durations
#   BENCH_OUT=DIR         where raw results and logs go (default target/bench/<timestamp>)
#   BENCH_DOC=FILE        the report to write (default docs/benchmarks.md)
#   BENCH_ONLY="a b"      run only these scenarios (names as in SCENARIOS below)
#   LANNER_BIN=PATH       benchmark this lanner binary instead of building one
#   LANNER_SOURCE=TEXT    where that binary came from, for the report (e.g. "commit abc1234")
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

REPS=${BENCH_REPS:-3}
QUICK=${BENCH_QUICK:-0}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${BENCH_OUT:-$ROOT/target/bench/$STAMP}
DOC=${BENCH_DOC:-$ROOT/docs/benchmarks.md}
SCENARIOS="pipelined single mixed paced reliable sync_always fanin memory"
ONLY=${BENCH_ONLY:-$SCENARIOS}

# Ports on loopback; the script refuses to start if one is taken.
LANNER_PORT=27133
REDIS_PORT=27379
MEMCACHED_PORT=27211

# Workload sizes (the quick mode keeps every code path and shrinks the counts).
if [ "$QUICK" = 1 ]; then
    REPS=${BENCH_REPS:-1}
    N_PIPELINED=50000 N_SINGLE=3000 MIXED_SECONDS=2 PACED_SECONDS=2 N_RELIABLE=20000
    ALWAYS_SECONDS=2 N_FANIN=20000 IDLE=2000 N_BIG=50000
else
    N_PIPELINED=400000 N_SINGLE=30000 MIXED_SECONDS=10 PACED_SECONDS=5 N_RELIABLE=200000
    ALWAYS_SECONDS=10 N_FANIN=1000000 IDLE=10000 N_BIG=1000000
fi
PACED_RATE=20000

mkdir -p "$OUT/logs" "$OUT/data"
RESULTS=$OUT/results.jsonl
COMMANDS=$OUT/commands.txt
: >"$RESULTS"
: >"$COMMANDS"
log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# --- peers -------------------------------------------------------------------------------------
install_peers() {
    if command -v redis-server >/dev/null && command -v memcached >/dev/null && command -v redis-cli >/dev/null; then
        return
    fi
    log "installing redis-server and memcached from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server memcached >/dev/null
}

# --- build -------------------------------------------------------------------------------------
build() {
    if [ -n "${LANNER_BIN:-}" ]; then
        log "using LANNER_BIN=$LANNER_BIN"
        LANNER_SOURCE=${LANNER_SOURCE:-"LANNER_BIN=$LANNER_BIN"}
        cargo build --release -q -p lanner-bench
    else
        log "cargo build --release --bin lanner --bin lanner-bench"
        cargo build --release -q --bin lanner --bin lanner-bench
        LANNER_BIN=$ROOT/target/release/lanner
        LANNER_SOURCE="built by this script from the working tree at commit $(git -C "$ROOT" rev-parse --short HEAD)"
        if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]; then
            LANNER_SOURCE="$LANNER_SOURCE (with uncommitted changes)"
        else
            LANNER_SOURCE="$LANNER_SOURCE (clean)"
        fi
    fi
    BENCH=$ROOT/target/release/lanner-bench
}

# --- servers -----------------------------------------------------------------------------------
# start_server NAME MODE [keep]: starts NAME (lanner|redis|memcached) in MODE (default|always|memory)
# on a fresh data directory (or the current one with "keep"); sets PID, ADDR, PROTO, SERVER_CMD.
DIR_SEQ=0
START_SEQ=0
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_server() {
    local name=$1 mode=$2 keep=${3:-}
    if [ -z "$keep" ]; then
        DIR_SEQ=$((DIR_SEQ + 1))
        DATA=$OUT/data/$name-$DIR_SEQ
        rm -rf "$DATA"
        mkdir -p "$DATA"
    fi
    START_SEQ=$((START_SEQ + 1))
    SERVER_LOG=$OUT/logs/$name-$DIR_SEQ-$START_SEQ.log
    case $name in
    lanner)
        ADDR=127.0.0.1:$LANNER_PORT PROTO=kestrel
        local config=$DATA.toml
        {
            echo '[default]'
            if [ "$mode" = always ]; then echo 'sync = "always"'; else echo 'sync = "100ms"'; fi
            if [ "$mode" = memory ] && [ "$MAX_MEMORY_SUPPORTED" = 1 ]; then echo 'max_memory_size = "8MiB"'; fi
        } >"$config"
        SERVER_CMD="$LANNER_BIN --listen $ADDR --text-listen= --admin-listen= --data-dir $DATA --config $config"
        ;;
    redis)
        ADDR=127.0.0.1:$REDIS_PORT PROTO=redis
        local fsync=everysec
        [ "$mode" = always ] && fsync=always
        # save "" turns RDB snapshots off, so only the AOF is measured (no BGSAVE forks).
        SERVER_CMD="redis-server --bind 127.0.0.1 --port $REDIS_PORT --dir $DATA --appendonly yes --appendfsync $fsync --save \"\" --maxclients 12000 --daemonize no"
        ;;
    memcached)
        ADDR=127.0.0.1:$MEMCACHED_PORT PROTO=memcached
        SERVER_CMD="memcached -l 127.0.0.1 -p $MEMCACHED_PORT -U 0 -m 4096 -c 12000 -u root"
        ;;
    esac
    port_free "${ADDR#*:}" || { log "port ${ADDR#*:} is in use"; exit 1; }
    # Word splitting is intended: lanner-bench's restart scenario splits the command the same
    # way, and redis-server reads the literal "" as an empty value.
    # shellcheck disable=SC2086
    $SERVER_CMD >>"$SERVER_LOG" 2>&1 &
    PID=$!
    wait_ready "$name"
}

wait_ready() {
    local name=$1 deadline=$((SECONDS + 120))
    while [ $SECONDS -lt $deadline ]; do
        alive "$PID" || { log "$name exited during startup; see $SERVER_LOG"; tail -5 "$SERVER_LOG" >&2; exit 1; }
        case $name in
        lanner) grep -q 'lanner listening on' "$SERVER_LOG" 2>/dev/null && return ;;
        redis) [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && return ;;
        memcached) port_free "$MEMCACHED_PORT" || return 0 ;;
        esac
        sleep 0.05
    done
    log "$name did not become ready"
    exit 1
}

# finish: stops the current server and deletes its data directory (the 1M x 1 KiB runs leave
# about a GiB each).
finish() {
    stop_server "$PID"
    rm -rf "$DATA"
}

# stop_server PID: SIGTERM, then SIGKILL after 20 s; reaps it if it is this shell's child.
stop_server() {
    local pid=$1 deadline=$((SECONDS + 20))
    kill -TERM "$pid" 2>/dev/null || true
    while alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.05; done
    wait "$pid" 2>/dev/null || true
}

# Does this lanner accept max_memory_size (read-behind)? Probe once.
probe_max_memory() {
    local dir=$OUT/data/probe
    mkdir -p "$dir"
    printf '[default]\nmax_memory_size = "8MiB"\n' >"$dir.toml"
    "$LANNER_BIN" --listen 127.0.0.1:0 --text-listen= --admin-listen= --data-dir "$dir" --config "$dir.toml" >"$OUT/logs/probe.log" 2>&1 &
    local pid=$! deadline=$((SECONDS + 20))
    while alive "$pid" && ! grep -q 'lanner listening on' "$OUT/logs/probe.log" && [ $SECONDS -lt $deadline ]; do
        sleep 0.05
    done
    MAX_MEMORY_SUPPORTED=0
    grep -q 'lanner listening on' "$OUT/logs/probe.log" && MAX_MEMORY_SUPPORTED=1
    stop_server "$pid"
    rm -rf "$dir" "$dir.toml"
    log "max_memory_size supported: $MAX_MEMORY_SUPPORTED"
}

# --- running the tool --------------------------------------------------------------------------
# bench LABEL SUBCOMMAND ARGS...: one lanner-bench run against the current server; its JSON line
# goes to results.jsonl tagged with the repetition.
bench() {
    local label=$1 sub=$2
    shift 2
    local args=(--proto "$PROTO" --addr "$ADDR" --label "$label" "$@")
    [ "$sub" = restart ] || args+=(--pid "$PID")
    echo "lanner-bench $sub ${args[*]}" >>"$COMMANDS"
    local line
    if ! line=$("$BENCH" "$sub" "${args[@]}" 2>>"$OUT/logs/bench.log"); then
        log "FAILED: lanner-bench $sub ${args[*]} (see $OUT/logs/bench.log)"
    fi
    line=$(printf '%s\n' "$line" | grep '^{' | tail -1)
    if [ -n "$line" ]; then
        printf '%s\n' "$line" | jq -c --argjson rep "$REP" '. + {rep: $rep}' >>"$RESULTS"
        printf '%s\n' "$line" | jq -r '"  \(.server) \(.label): \(.msgs_per_s) msg/s p50 \(.p50_us)us p99 \(.p99_us)us lost \(.lost // "-") ok \(.ok)"' >&2
    fi
    LAST=$line
}

# --- scenarios ---------------------------------------------------------------------------------
# Each takes a server name, starts it fresh, runs, and stops it.
scenario_pipelined() { # produce then consume, 8 connections x depth 16, 64 B
    start_server "$1" default
    bench "produce 8x16" produce --connections 8 --pipeline 16 --messages "$N_PIPELINED"
    bench "consume 8x16" consume --connections 8 --pipeline 16 --messages "$N_PIPELINED"
    finish
}

scenario_single() { # one connection, no pipelining
    start_server "$1" default
    bench "produce 1x1" produce --connections 1 --pipeline 1 --messages "$N_SINGLE"
    bench "consume 1x1" consume --connections 1 --pipeline 1 --messages "$N_SINGLE"
    finish
}

scenario_mixed() { # 4 producers + 4 blocking consumers, as fast as they go
    [ "$1" = memcached ] && return
    start_server "$1" default
    bench "mixed 4+4" mixed --producers 4 --consumers 4 --duration "$MIXED_SECONDS" --messages 100000000
    finish
}

scenario_paced() { # the same at a fixed offered load both servers sustain: latency without backlog
    [ "$1" = memcached ] && return
    start_server "$1" default
    bench "mixed 4+4 paced" mixed --producers 4 --consumers 4 --duration "$PACED_SECONDS" \
        --rate "$PACED_RATE" --messages 100000000
    finish
}

scenario_reliable() { # reliable reads by 8 consumers of a prefilled queue
    [ "$1" = memcached ] && return
    start_server "$1" default
    bench "reliable prefill" produce --connections 8 --pipeline 16 --messages "$N_RELIABLE"
    bench "reliable 8x1" reliable --connections 8 --pipeline 1 --messages "$N_RELIABLE"
    finish
}

scenario_sync_always() { # fsync before every ack, 64 connections x depth 1, then SIGKILL and verify
    [ "$1" = memcached ] && return
    local acked=$OUT/acked-$1-$REP.txt
    start_server "$1" always
    bench "sync-always 64x1" produce --connections 64 --pipeline 1 --duration "$ALWAYS_SECONDS" \
        --messages 100000000 --kill-at-end --acked-file "$acked"
    wait "$PID" 2>/dev/null || true
    start_server "$1" always keep
    bench "sync-always verify" consume --connections 8 --pipeline 16 --expect-acked "$acked" \
        --duration 300
    finish
}

scenario_fanin() { # 10,000 idle connections next to an active 8x16 load
    start_server "$1" default
    bench "fanin 8x16" fanin --connections 8 --pipeline 16 --messages "$N_FANIN" --idle "$IDLE"
    finish
}

scenario_memory() { # 1,000,000 x 1 KiB queued: memory, restart after SIGKILL, drain
    start_server "$1" memory
    bench "1M x 1KiB" produce --connections 8 --pipeline 16 --size 1024 --messages "$N_BIG" --duration 600
    if [ "$1" != memcached ]; then
        local old=$PID
        bench "restart 1M x 1KiB" restart --size 1024 --pid "$PID" --spawn "$SERVER_CMD" \
            --spawn-log "$SERVER_LOG" --duration 600
        wait "$old" 2>/dev/null || true
        local new
        new=$(printf '%s\n' "$LAST" | jq -r '.new_pid // empty')
        if [ -n "$new" ] && alive "$new"; then
            PID=$new
        else
            log "the restart run failed; starting $1 again on the same data to drain it"
            start_server "$1" memory keep
        fi
    fi
    bench "drain 1M x 1KiB" consume --connections 8 --pipeline 16 --size 1024 --messages "$N_BIG" --duration 600
    finish
}

# --- machine -----------------------------------------------------------------------------------
machine() {
    jq -n \
        --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        --arg nproc "$(nproc)" \
        --arg cpu "$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)" \
        --arg memory "$(free -h | awk '/^Mem:/ {print $2}')" \
        --arg kernel "$(uname -sr)" \
        --arg loadavg "$(cut -d' ' -f1-3 /proc/loadavg)" \
        --arg disk "$(df -h "$OUT" | awk 'NR==2 {print $1" ("$2")"}')" \
        --arg rustc "$(rustc --version)" \
        --arg lanner "$("$LANNER_BIN" --version 2>&1 | head -1)" \
        --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        --arg lanner_source "$LANNER_SOURCE" \
        --arg redis "$(redis-server --version | head -1)" \
        --arg memcached "$(memcached -V | head -1)" \
        --arg reps "$REPS" --arg quick "$QUICK" --arg max_memory "$MAX_MEMORY_SUPPORTED" \
        --arg n_pipelined "$N_PIPELINED" --arg n_single "$N_SINGLE" --arg n_reliable "$N_RELIABLE" \
        --arg mixed_seconds "$MIXED_SECONDS" --arg paced_rate "$PACED_RATE" \
        --arg always_seconds "$ALWAYS_SECONDS" --arg n_fanin "$N_FANIN" --arg idle "$IDLE" \
        --arg n_big "$N_BIG" --arg ulimit "$(ulimit -n)" \
        '$ARGS.named' >"$OUT/machine.json"
}

# Whatever happens, leave no server of ours running.
cleanup() {
    if [ -n "${PID:-}" ] && alive "$PID"; then stop_server "$PID"; fi
}
trap cleanup EXIT

main() {
    install_peers
    build
    # 10,000 idle connections need descriptors in the client and in each server.
    ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    MAX_MEMORY_SUPPORTED=0
    probe_max_memory
    machine
    log "results in $OUT; scenarios: $ONLY; repetitions: $REPS"
    local started=$SECONDS
    for scenario in $ONLY; do
        for REP in $(seq 1 "$REPS"); do
            for server in lanner redis memcached; do
                log "$scenario, repetition $REP, $server"
                "scenario_$scenario" "$server"
            done
        done
    done
    jq -n --arg seconds "$((SECONDS - started))" '$ARGS.named' >"$OUT/duration.json"
    log "all runs done in $((SECONDS - started)) s; writing $DOC"
    python3 "$ROOT/scripts/bench_report.py" --out-dir "$OUT" --doc "$DOC"
}

main "$@"
