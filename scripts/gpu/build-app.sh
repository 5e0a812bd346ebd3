#!/usr/bin/env bash
# Builds FFmpeg 5.1 (with NVDEC) and then the whole clipfind program, its
# tests and benchmarks, on the GPU machine, which has CUDA, gcc, CMake and the
# engine's header-only libraries but no FFmpeg, SQLite, cpp-httplib, utf8proc,
# oneDNN or nasm, and no network.
#
# Recipe (about 20 MB carried beside the ~15 MB of tracked files):
#   here, once:   scripts/gpu/fetch-debs.sh && scripts/gpu/fetch-ffmpeg.sh
#                 (fills the git-ignored .debs/: the engine's debs; FFmpeg
#                 5.1.9's Debian source in .debs/ffmpeg-src, ~10 MB; the
#                 nv-codec-headers (libffmpeg-nvenc-dev), nasm, SQLite,
#                 cpp-httplib + brotli, utf8proc)
#   device call:  carry .debs (and .deps/cutlass if fetched), then
#                 scripts/gpu/build-app.sh [BUILD_DIR] [TARGET...]
#                 (default build/app-gpu, all targets; FFMPEG_ONLY=1 stops
#                 after FFmpeg; CMAKE_ARGS adds CMake options, e.g.
#                 "-DCLIPFIND_BUILD_PYTHON=ON -Dnanobind_DIR=..."). The binaries find /tmp/ffmpeg/lib and
#                 /tmp/debroot through their build rpath; for the `ffmpeg`
#                 program: PATH=/tmp/ffmpeg/bin:$PATH.
# Steps:
#   1. the debs are unpacked into /tmp/debroot (scripts/gpu/carried_debs.sh);
#      .pc files missing there (openssl, zlib, brotli: cpp-httplib's
#      Requires.private, only needed for its flags) get empty stand-ins;
#   2. FFmpeg is configured with --disable-everything and only what clipfind
#      reads: the file protocol; the mov/mp4, matroska/webm, mpegts and avi
#      demuxers; the h264, hevc, mpeg4, vp9 and vp8 software decoders with
#      their parsers; the NVDEC hwaccels for h264/hevc/vp9/mpeg4 and the
#      h264/hevc cuvid decoders; swscale; the mpeg4 encoder and mp4/null
#      muxers so the `ffmpeg` program can write test clips and decode to a
#      null sink. Shared libraries in /tmp/ffmpeg (about 25 s at -j16, with
#      nasm from the carried deb so software decoding keeps its SIMD);
#   3. clipfind is configured against it (PKG_CONFIG_PATH) with
#      CLIPFIND_BUILD_APP=ON, CUDA for sm_90, and built.
set -euo pipefail
ROOT=$(pwd)
BUILD=${1:-build/app-gpu}
shift || true
T0=$(date +%s)
stamp() { echo "=== [$(($(date +%s) - T0)) s] $*"; }
JOBS=${JOBS:-$(nproc)}

# 1. Carried packages.
source scripts/gpu/carried_debs.sh
DEB=/tmp/debroot
export PATH=$DEB/usr/bin:$PATH
sed -i "s|^prefix=/usr\$|prefix=$DEB/usr|" $DEB/usr/share/pkgconfig/*.pc 2>/dev/null || true
mkdir -p $DEB/pc-shims
for m in openssl zlib libbrotlicommon libbrotlidec libbrotlienc; do
  pkg-config --exists $m 2>/dev/null ||
    printf 'Name: %s\nDescription: stand-in\nVersion: 99\nCflags:\nLibs:\n' $m >$DEB/pc-shims/$m.pc
done
export PKG_CONFIG_PATH=$PKG_CONFIG_PATH:$DEB/pc-shims
# Multiarch headers of the carried -dev packages (OpenSSL's configuration.h,
# which cpp-httplib's header reaches) are not on the compiler's default path.
export CPATH=$DEB/usr/include/x86_64-linux-gnu${CPATH:+:$CPATH}
stamp "debs unpacked; nasm: $(nasm -v 2>&1 | head -1)"

# 2. FFmpeg.
FF=${FFMPEG_PREFIX:-/tmp/ffmpeg}
if [ ! -e $FF/lib/pkgconfig/libavcodec.pc ]; then
  SRC=$FF-src
  rm -rf $SRC && mkdir -p $SRC
  tar -xf .debs/ffmpeg-src/ffmpeg_*.orig.tar.xz -C $SRC --strip-components=1
  tar -xf .debs/ffmpeg-src/ffmpeg_*.debian.tar.xz -C $SRC
  (cd $SRC && while read -r p; do
     case $p in ''|'#'*) continue ;; esac
     patch -p1 -s <debian/patches/$p
   done <debian/patches/series)
  (cd $SRC && ./configure --prefix=$FF --enable-shared --disable-static --disable-doc --disable-debug \
     --disable-autodetect --disable-everything --disable-ffplay \
     --enable-ffnvcodec --enable-nvdec --enable-cuvid \
     --enable-protocol=file,pipe \
     --enable-demuxer=mov,matroska,mpegts,avi,h264,hevc,m4v \
     --enable-parser=h264,hevc,mpeg4video,vp9,vp8 \
     --enable-decoder=h264,hevc,mpeg4,vp9,vp8,h264_cuvid,hevc_cuvid \
     --enable-hwaccel=h264_nvdec,hevc_nvdec,vp9_nvdec,mpeg4_nvdec \
     --enable-bsf=h264_mp4toannexb,hevc_mp4toannexb,vp9_superframe_split \
     --enable-encoder=mpeg4,rawvideo,wrapped_avframe --enable-muxer=mp4,null,rawvideo \
     --enable-filter=scale,format,null,hwdownload,testsrc2,buffer,buffersink,fps \
     --enable-indev=lavfi >$FF-configure.log 2>&1) ||
    { tail -30 $FF-configure.log; echo "FFMPEG CONFIGURE FAILED"; exit 1; }
  grep -E "^(Enabled hwaccels|External libraries providing hardware)" -A3 $FF-configure.log || true
  # Libraries, headers and programs only: install-data wants doc/ffprobe.xsd,
  # which fetch-ffmpeg.sh leaves out of the source with the manual.
  make -C $SRC -j"$JOBS" >$FF-build.log 2>&1 &&
    make -C $SRC install-libs install-headers install-progs >>$FF-build.log 2>&1 ||
    { grep -iE "error[: ]|\*\*\*|No such file|Killed" $FF-build.log | grep -v "^CC" | head -20; tail -15 $FF-build.log
      df -h /tmp | tail -1; echo "FFMPEG BUILD FAILED"; exit 1; }
fi
export PKG_CONFIG_PATH=$FF/lib/pkgconfig:$PKG_CONFIG_PATH
export LD_LIBRARY_PATH=$FF/lib:$LD_LIBRARY_PATH
export PATH=$FF/bin:$PATH
stamp "FFmpeg $(ffmpeg -version | head -1 | cut -d' ' -f3) in $FF; hwaccels: $(ffmpeg -hide_banner -hwaccels | tail -n +2 | xargs)"

[ -z "${FFMPEG_ONLY:-}" ] || exit 0

# 3. clipfind.
scripts/fetch-cutlass.sh >/dev/null 2>&1 || echo "no CUTLASS headers: building with cuBLASLt alone"
# zlib1g-dev's libz.so in the debroot points at libz.so.1, which is not
# carried (the machine has its own): left alone, CMake takes the static
# libz.a, which the Python extension (a shared module) cannot link.
zlib=$(ls /lib/x86_64-linux-gnu/libz.so.1 /usr/lib/x86_64-linux-gnu/libz.so.1 2>/dev/null | head -1 || true)
zlib_args=()
[ -n "$zlib" ] && zlib_args=(-DZLIB_LIBRARY="$zlib" -DZLIB_LIBRARY_RELEASE="$zlib")
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
mkdir -p "$(dirname "$BUILD")"
cmake -S . -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCLIPFIND_BUILD_APP=ON -DCLIPFIND_CUDA=ON \
  -DCMAKE_CUDA_COMPILER="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)" -DCMAKE_CUDA_ARCHITECTURES=90 \
  "${zlib_args[@]}" ${CMAKE_ARGS:-} >"$BUILD.configure.log" 2>&1 || { tail -30 "$BUILD.configure.log"; echo "CLIPFIND CONFIGURE FAILED"; exit 1; }
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$BUILD" -j"$JOBS" "${targets[@]}" >"$BUILD.build.log" 2>&1 ||
  { grep -E "error|Error" "$BUILD.build.log" | head -30; echo "CLIPFIND BUILD FAILED"; exit 1; }
stamp "clipfind built in $BUILD"
