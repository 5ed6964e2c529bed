#!/usr/bin/env bash
# The durable core's headline figures: sequential and pipelined `set` round trips under
# `sync = "never"` and `sync = "100ms"`, and the journal bytes left after setting and draining
# 1,000,000 items. Loopback only; every run is bounded by its message count.
#
# Usage: scripts/core-figures.sh [BIN_DIR]   (default: target/release, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release}
if [[ ! -x $bin/lanner || ! -x $bin/lanner-bench ]]; then
  cargo build --release -p lanner-server -p lanner-bench
fi
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

start_server() { # $1 = sync policy
  rm -rf "$work/data"
  printf '[default]\nsync = "%s"\n' "$1" >"$work/lanner.toml"
  "$bin/lanner" --listen 127.0.0.1:0 --text-listen "" --admin-listen "" --data-dir "$work/data" --config "$work/lanner.toml" 2>"$work/log" &
  server=$!
  for _ in $(seq 200); do
    addr=$(sed -n 's/.*lanner listening on \([0-9.:]*\).*/\1/p' "$work/log")
    [[ -n $addr ]] && return 0
    sleep 0.05
  done
  echo "lanner did not start" >&2
  cat "$work/log" >&2
  exit 1
}

journal_bytes() {
  find "$work/data" -name '*.journal' -printf '%s\n' | awk '{sum += $1} END {print sum + 0}'
}

bench() {
  "$bin/lanner-bench" "$@" --addr "$addr" --queue figures
}

for sync in never 100ms; do
  start_server "$sync"
  echo "== sync = $sync"
  bench produce --messages 100000 --connections 1 --pipeline 1
  bench consume --messages 100000 --connections 1 --pipeline 1
  bench produce --messages 1000000 --connections 1 --pipeline 100
  bench consume --messages 1000000 --connections 8 --pipeline 16
  bench produce --messages 1000000 --connections 8 --pipeline 16
  echo "journal bytes with 1,000,000 items queued: $(journal_bytes)"
  bench consume --messages 1000000 --connections 8 --pipeline 16
  echo "journal bytes after draining them: $(journal_bytes)"
  kill "$server"
  wait "$server" || true
done
