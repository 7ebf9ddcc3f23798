#!/usr/bin/env bash
# Randomized-schedule concurrency tests (tests/shuttle.rs): builds with `--cfg shuttle`, which
# swaps MemoryStore's mutex for shuttle's (src/sync.rs), in its own target directory so the
# normal build cache stays valid.
#
#   scripts/shuttle.sh                          # 10,000 random + 10,000 PCT schedules per test
#   SHUTTLE_ITERATIONS=20000 scripts/shuttle.sh # more
#   SHUTTLE_RANDOM_SEED=<seed> scripts/shuttle.sh same_leaf   # replay a printed seed
#   SHUTTLE_SCHEDULE=<schedule> scripts/shuttle.sh same_leaf  # replay a printed schedule
set -euo pipefail
cd "$(dirname "$0")/.."
# SHUTTLE_PROFILE_ARGS="" builds in debug (what .ci/run does, with fewer iterations).
read -r -a profile <<< "${SHUTTLE_PROFILE_ARGS---release}"
RUSTFLAGS="${RUSTFLAGS:-} --cfg shuttle" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/shuttle}" \
    cargo test "${profile[@]}" --test shuttle -- "$@"
