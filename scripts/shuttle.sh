#!/usr/bin/env bash
# Randomized-schedule concurrency tests of MemoryStore (src/store/memory/shuttle_tests.rs, unit
# tests of the library): builds the library's tests with `--cfg shuttle`, which swaps
# MemoryStore's mutex for shuttle's (src/sync.rs), in its own target directory so the normal
# build cache stays valid. shuttle is a `cfg(shuttle)` dev-dependency, so it never reaches the
# Cargo.lock of crates that depend on budget-guard.
#
#   scripts/shuttle.sh                          # 10,000 random + 10,000 PCT schedules per test
#   SHUTTLE_ITERATIONS=20000 scripts/shuttle.sh # more
#   SHUTTLE_RANDOM_SEED=<seed> scripts/shuttle.sh same_leaf   # replay a printed seed
#   SHUTTLE_SCHEDULE=<schedule> scripts/shuttle.sh same_leaf  # replay a printed schedule
#
# Without arguments only the shuttle tests run (`shuttle_tests::`): the library's other unit tests
# cannot run on shuttle's mutex outside a shuttle run. Arguments are passed to the test harness
# as they are, so a filter should name a shuttle test.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
    set -- shuttle_tests::
fi
# SHUTTLE_PROFILE_ARGS="" builds in debug (what .ci/run does, with fewer iterations).
read -r -a profile <<< "${SHUTTLE_PROFILE_ARGS---release}"
RUSTFLAGS="${RUSTFLAGS:-} --cfg shuttle" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/shuttle}" \
    cargo test "${profile[@]}" --lib -- "$@"
