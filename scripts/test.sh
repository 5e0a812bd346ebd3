#!/usr/bin/env bash
# The test command (README, CI): installs what it needs, checks formatting and
# commit messages, builds, runs every test (unit, golden, CLI, differential
# tokenizer), says in one line which tests skipped and why, then fuzzes the
# parsers for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# House rules first: they take seconds and name what to fix.
scripts/check-format.sh
scripts/check-commits.sh
scripts/build.sh
# ctest lists skipped tests only as "did not run": the JUnit report keeps
# each one's printed reason, summarised in one line (GPU absent, data absent).
junit=$PWD/build/ctest-junit.xml
rc=0
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 900 --output-junit "$junit" || rc=$?
python3 scripts/skip_summary.py "$junit" | sed 's/^/test.sh: /' || true
[ "$rc" -eq 0 ] || exit "$rc"
scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
