#!/usr/bin/env bash
# The test command (README, CI): installs what it needs, builds, runs every
# test (unit, golden, CLI, differential tokenizer, the Python package), then
# fuzzes the parsers for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 900
# The Python package (tests/python), built without CUDA (the build above
# compiles and tests that backend; its kernels again would add minutes) into
# build/python, so a second run rebuilds only what changed; its index tests
# drive the clipfind program just built.
python3 -m pip install --quiet --disable-pip-version-check "scikit-build-core>=0.10" "nanobind>=2.4" numpy pytest pillow
python3 -m pip install --quiet --disable-pip-version-check --no-build-isolation \
  -C build-dir=build/python -C cmake.define.CLIPFIND_CUDA=OFF .
CLIPFIND_BIN="$PWD/build/src/app/clipfind" python3 -m pytest -q tests/python
scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
