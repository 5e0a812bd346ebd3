#!/usr/bin/env bash
# Installs the Debian packages and PyPI packages clipfind builds and tests with.
# Safe to run again: does nothing when everything is there.
#
#   scripts/install-deps.sh           # everything: build, tests, fuzzing, benchmarks
#   scripts/install-deps.sh --build   # only building and running clipfind (scripts/demo.sh)
set -euo pipefail

# Building the clipfind program and running it on the sample video.
# ocl-icd-opencl-dev: libdnnl-dev only recommends it, but its CMake config
# fails without OpenCL (and apt-get below leaves recommendations out).
BUILD_DEBS=(
  build-essential cmake ninja-build pkg-config python3 python3-numpy zlib1g-dev
  nlohmann-json3-dev libutf8proc-dev libsentencepiece-dev libpng-dev libjpeg62-turbo-dev libcli11-dev libdnnl-dev ocl-icd-opencl-dev
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev libsqlite3-dev ffmpeg
  libcpp-httplib-dev libfaiss-dev
)
# The rest: tests, fuzzing, benchmarks, the browser test.
DEBS=(
  "${BUILD_DEBS[@]}"
  git python3-pip libopenblas-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev clang-format
  chromium chromium-driver python3-selenium wrk
)
# PyPI packages as [module:]distribution==version (the module to import when
# it is not the distribution's name). transformers + sentencepiece + protobuf:
# the reference of tests/spm_tokenizer_diff.py (SigLIP tokenizers; no torch).
# yaml:PyYAML: test_shard_cli.py reads the README's Kubernetes manifest.
PIP=(tokenizers==0.23.3 transformers==5.17.0 sentencepiece==0.2.1 google.protobuf:protobuf==7.36.2 yaml:PyYAML==6.0.3)
case "${1:-}" in
  "") ;;
  --build) DEBS=("${BUILD_DEBS[@]}"); PIP=() ;;
  *) echo "usage: $0 [--build]" >&2; exit 2 ;;
esac

missing=()
for p in "${DEBS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# CUTLASS headers (PyPI's nvidia-cutlass wheel) for the Hopper GEMMs of the
# CUDA build; the --build set (the demo) builds without them.
[ "${1:-}" = --build ] || "$(dirname "$0")/fetch-cutlass.sh"

for entry in "${PIP[@]}"; do
  spec=${entry#*:}
  dist=${spec%%=*}
  mod=${entry%%:*}
  [ "$mod" = "$entry" ] && mod=$dist
  version=${spec##*==}
  if ! python3 -c "import importlib.metadata as m, sys, $mod; sys.exit(m.version('$dist') != '$version')" 2>/dev/null; then
    echo "installing PyPI package: $spec"
    python3 -m pip install --quiet --disable-pip-version-check "$spec"
  fi
done
