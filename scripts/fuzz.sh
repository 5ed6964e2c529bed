#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a fixed time (docs/fuzzing.md).
#
#   scripts/fuzz.sh [seconds] [target ...]     default: 30 s each, every target
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). Without
# either it prints "skipped: ..." and exits 0, so CI can call it unconditionally.
#
# Each target starts from its committed seeds (fuzz/corpus/<target>/, read only) plus what
# earlier runs found (fuzz/runs/corpus/<target>/, git-ignored, where new inputs are written).
# A crash leaves its input in fuzz/artifacts/<target>/; the script goes on with the other
# targets, prints how to reproduce and minimise each crash, and exits 1.
#
# Environment: FUZZ_SANITIZER (default "address"; "none" roughly doubles the speed, and lanner
# itself has no unsafe code), FUZZ_ARGS (extra libFuzzer flags, e.g. "-jobs=2 -workers=2").
set -uo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
shift $(($# > 0 ? 1 : 0))
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: scripts/fuzz.sh [seconds] [target ...]" >&2
    exit 2
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "skipped: fuzzing needs the nightly toolchain (rustup toolchain install nightly)"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "skipped: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
    exit 0
fi

if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
fi
sanitizer="${FUZZ_SANITIZER:-address}"
read -r -a extra <<<"${FUZZ_ARGS:-}"

echo "== cargo +nightly fuzz build (sanitizer: $sanitizer)"
if ! cargo +nightly fuzz build --fuzz-dir fuzz -s "$sanitizer"; then
    echo "fuzz build failed" >&2
    exit 1
fi

# journal_replay's scratch directories: in RAM when possible, removed even after a crash.
if [[ -d /dev/shm && -w /dev/shm ]]; then
    scratch=$(mktemp -d /dev/shm/lanner-fuzz.XXXXXX)
else
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/lanner-fuzz.XXXXXX")
fi
trap 'rm -rf "$scratch"' EXIT
export LANNER_FUZZ_TMPDIR="$scratch"

failed=()
for target in "${targets[@]}"; do
    runs="fuzz/runs/corpus/$target"
    mkdir -p "$runs" "fuzz/artifacts/$target"
    log="fuzz/runs/$target.log"
    echo "== $target: ${seconds}s"
    cargo +nightly fuzz run --fuzz-dir fuzz -s "$sanitizer" "$target" "$runs" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=20 -print_final_stats=1 "${extra[@]}" >"$log" 2>&1
    status=$?
    execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    cov=$(grep -E '^#[0-9]+' "$log" | tail -n1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
    echo "   exit $status, ${execs:-?} executions, ${cov:-no coverage line}"
    if ((status != 0)); then
        failed+=("$target")
        # The panic location, its message (the next line), and libFuzzer's verdict.
        grep -m1 -A1 'panicked at' "$log"
        grep -E 'SUMMARY|ERROR: libFuzzer' "$log" | head -n 3
        for artifact in $(grep -oE "[^[:space:]']*artifacts/$target/[a-z-]+-[0-9a-f]+" "$log" | sort -u); do
            echo "   reproduce: cargo +nightly fuzz run --fuzz-dir fuzz $target $artifact"
            echo "   minimise:  cargo +nightly fuzz tmin --fuzz-dir fuzz $target $artifact"
        done
        echo "   full log: $log"
    fi
done

if ((${#failed[@]} > 0)); then
    echo "fuzzing found problems in: ${failed[*]}"
    exit 1
fi
echo "fuzzing: no crash in ${#targets[@]} target(s), ${seconds}s each"
