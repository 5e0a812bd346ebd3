#!/usr/bin/env bash
# Fills .debs/ (git-ignored) with the Debian packages that the GPU machine
# lacks and that the engine's build there needs: utf8proc, SentencePiece, oneDNN
# and the OpenCL loader oneDNN's CMake config asks for. scripts/gpu/carried_debs.sh
# unpacks them there; name .debs in the device call's carry list.
#
#   scripts/gpu/fetch-debs.sh          # run here, from anywhere in the repository
set -euo pipefail
case "${1:-}" in
  "") ;;
  -h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "fetch-debs.sh takes no arguments (--help)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/../.."
# libsentencepiece: SigLIP's tokenizers (issue 26).
ENGINE_DEBS=(libutf8proc2 libutf8proc-dev libdnnl2 libdnnl-dev ocl-icd-libopencl1 ocl-icd-opencl-dev opencl-c-headers
  libsentencepiece0 libsentencepiece-dev)
mkdir -p .debs
# apt-get download writes into the current folder; it needs package lists.
[ -n "$(ls /var/lib/apt/lists/*Packages* 2>/dev/null)" ] || apt-get update -qq
(cd .debs && apt-get download -qq "${ENGINE_DEBS[@]}")
ls -l .debs
