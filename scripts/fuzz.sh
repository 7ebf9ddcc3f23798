#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (nightly toolchain and `cargo install cargo-fuzz` needed).
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   scripts/fuzz.sh ops 600         # one target for ten minutes
#   scripts/fuzz.sh "" 30           # every target, 30 s each (the CI smoke run)
#   FUZZ_JOBS=2 scripts/fuzz.sh ops 600   # libFuzzer workers in parallel
#   scripts/fuzz.sh --seeds-only    # build, then run each target over its seeds once (CI)
#
# Targets: ops (operation sequences), file_decode (raw bytes as a file), restore (valid
# snapshots with hostile edits) and records (seed files whose record payloads are edited and
# re-checksummed); the last two read the edit language documented in fuzz/src/hostile.rs.
#
# The committed seed corpus is fuzz/corpus/TARGET and is only read; new inputs the run finds go
# to fuzz/target/corpus/TARGET (not committed). A crash leaves its input in fuzz/artifacts/TARGET/
# and stops the run with a non-zero exit; copy it into fuzz/corpus/TARGET/crash-<what> and it is
# replayed by every `cargo test` (tests/fuzz_regressions.rs).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

if [ "${1:-}" = "--seeds-only" ]; then
    # Build every target and run it once over its committed seeds: a regression check for CI.
    for t in $(cargo +nightly fuzz list); do
        echo "== fuzz $t: replay fuzz/corpus/$t =="
        cargo +nightly fuzz run -O "$t" "corpus/$t" -- -runs=0
    done
    exit 0
fi

target="${1:-}"
seconds="${2:-60}"
jobs="${FUZZ_JOBS:-1}"

if [ -n "$target" ]; then
    targets=("$target")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

for t in "${targets[@]}"; do
    echo "== fuzz $t for ${seconds}s (${jobs} job(s)) =="
    mkdir -p "corpus/$t" "artifacts/$t"
    # A scratch corpus dir first so new finds do not mix with the committed seeds.
    mkdir -p "target/corpus/$t"
    parallel=()
    if [ "$jobs" -gt 1 ]; then parallel=(-jobs="$jobs" -workers="$jobs"); fi
    cargo +nightly fuzz run -O "$t" "target/corpus/$t" "corpus/$t" -- \
        -max_total_time="$seconds" "${parallel[@]}" \
        -print_final_stats=1 -max_len=4096 -timeout=10 -rss_limit_mb=1024
done
