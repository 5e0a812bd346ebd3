#!/usr/bin/env bash
# Installs the Debian packages and PyPI packages clipfind builds and tests with.
# Safe to run again: does nothing when everything is there.
set -euo pipefail

DEBS=(
  build-essential cmake ninja-build pkg-config git python3 python3-pip zlib1g-dev
  nlohmann-json3-dev libutf8proc-dev libpng-dev libjpeg62-turbo-dev libcli11-dev
  libopenblas-dev libdnnl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev libsqlite3-dev ffmpeg
  python3-numpy
  libcpp-httplib-dev chromium chromium-driver python3-selenium wrk
)
PIP=(tokenizers==0.23.3)

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

for spec in "${PIP[@]}"; do
  mod=${spec%%=*}
  if ! python3 -c "import $mod" 2>/dev/null; then
    echo "installing PyPI package: $spec"
    python3 -m pip install --quiet --disable-pip-version-check "$spec"
  fi
done
