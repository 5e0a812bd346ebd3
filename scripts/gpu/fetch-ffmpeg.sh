#!/usr/bin/env bash
# Fills .debs/ (git-ignored) with what the whole clipfind program needs on the
# GPU machine beyond the engine's packages (scripts/gpu/fetch-debs.sh):
#   - FFmpeg 5.1's Debian source (.orig tarball + debian/ patches, ~12 MB) in
#     .debs/ffmpeg-src/, built there by scripts/gpu/build-app.sh;
#   - the NVDEC/CUDA dynamic-loader headers FFmpeg compiles against
#     (libffmpeg-nvenc-dev, i.e. nv-codec-headers) and nasm (FFmpeg's x86 SIMD);
#   - SQLite, cpp-httplib (+ its runtime library and brotli, which it links) and utf8proc, which the GPU
#     machine lacks (the last comes with fetch-debs.sh too; apt skips repeats).
# The deb-src entry lives in a private apt configuration under /tmp, not in the
# system's sources. Run here, from anywhere in the repository:
#   scripts/gpu/fetch-debs.sh && scripts/gpu/fetch-ffmpeg.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# cpp-httplib's header includes brotli's, OpenSSL's and zlib's (Debian builds
# it with all three), so their -dev packages come too.
APP_DEBS=(libffmpeg-nvenc-dev nasm libsqlite3-0 libsqlite3-dev libcpp-httplib-dev libcpp-httplib0.11 libbrotli1
          libbrotli-dev libssl-dev zlib1g-dev libutf8proc2 libutf8proc-dev)
APT=/tmp/clipfind-apt
mkdir -p $APT/lists/partial $APT/cache/archives/partial $APT/sources.d
# This machine's own Debian sources (deb822), with source packages added.
sed 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources >$APT/sources.d/debian.sources
: >$APT/sources.list
opts=(-o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=$APT/sources.d"
      -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -qq)
apt-get "${opts[@]}" update
mkdir -p .debs/ffmpeg-src
(cd .debs && apt-get "${opts[@]}" download "${APP_DEBS[@]}")
# The source package: the .dsc, the upstream tarball and the Debian patches.
(cd .debs/ffmpeg-src && rm -f ./* && apt-get "${opts[@]}" source --download-only ffmpeg)
# What the build there never reads goes, so that a device call's 64 MiB holds
# the source beside the packages and test videos: FATE's reference outputs
# (tests/ref, 17 MB unpacked) and the manual's sources (the Makefiles stay,
# the top Makefile includes them). The signature no longer matches: drop it.
orig=$(ls .debs/ffmpeg-src/ffmpeg_*.orig.tar.xz)
tmp=$(mktemp -d)
tar -xf "$orig" -C "$tmp"
top=$(ls "$tmp")
rm -rf "$tmp/$top/tests/ref"
find "$tmp/$top/doc" -type f ! -name Makefile -delete
tar -C "$tmp" -cf - "$top" | xz -9 -T0 >"$orig"
rm -rf "$tmp" .debs/ffmpeg-src/*.asc
ls -l .debs .debs/ffmpeg-src
du -sh .debs
