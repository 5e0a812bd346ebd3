#!/usr/bin/env bash
# The test command (README, CI): installs what it needs, checks formatting and
# commit messages, builds, runs every test (unit, golden, CLI, differential
# tokenizer, the Python package), says in one line which tests skipped and
# why, then fuzzes the parsers for a bounded time.
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
# The Python package (tests/python), built without CUDA (the build above
# compiles and tests that backend; its kernels again would add minutes) into
# build/python, so a second run rebuilds only what changed; its index tests
# drive the clipfind program just built.
python3 -m pip install --quiet --disable-pip-version-check "scikit-build-core>=0.10" "nanobind>=2.4" numpy pytest pillow
python3 -m pip install --quiet --disable-pip-version-check --no-build-isolation \
  -C build-dir=build/python -C cmake.define.CLIPFIND_CUDA=OFF .
CLIPFIND_BIN="$PWD/build/src/app/clipfind" python3 -m pytest -q tests/python
[ "$rc" -eq 0 ] || exit "$rc"
scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
