#!/usr/bin/env bash
# The test command (README, CI): installs what it needs, builds, runs every
# test (unit, golden, CLI, differential tokenizer), then fuzzes the parsers
# for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 900
scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
