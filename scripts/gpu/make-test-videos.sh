#!/usr/bin/env bash
# Makes the small clips the NVDEC tests (tests/test_gpu_decode.cpp) decode on
# both paths, with Debian's ffmpeg (libx264, libx265) here, since the GPU
# machine has no H.264/HEVC encoder; with --rate also the 1080p30 H.264 clip
# (x264 defaults: B-frames, 2-5 s GOP; 20 s at 2 Mb/s, ~5 MB) whose decode
# rate the test measures. Carry the folder (default .debs/videos) and point
# CLIPFIND_GPU_TEST_VIDEOS at it there.
#   scripts/gpu/make-test-videos.sh [DIR] [--rate]
set -euo pipefail
DIR=${1:-.debs/videos}
mkdir -p "$DIR"
ff() { ffmpeg -nostdin -v error -y "$@"; }
SRC="-f lavfi -i testsrc2=s=640x360:r=30:d=3"
ff $SRC -c:v libx264 -pix_fmt yuv420p -colorspace bt709 -color_primaries bt709 -color_trc bt709 \
  -color_range tv "$DIR/h264_bt709.mp4"
ff $SRC -c:v libx265 -x265-params log-level=error -pix_fmt yuv420p -colorspace bt709 -color_primaries bt709 \
  -color_trc bt709 -color_range tv -tag:v hvc1 "$DIR/hevc_bt709.mp4"
ff $SRC -c:v libx265 -x265-params log-level=error -pix_fmt yuv420p10le -colorspace bt2020nc \
  -color_primaries bt2020 -color_trc smpte2084 -color_range tv -tag:v hvc1 "$DIR/hevc_main10_bt2020.mp4"
ff $SRC -c:v libx264 -pix_fmt yuvj420p -colorspace bt470bg -color_range pc "$DIR/h264_full_bt601.mp4"
ff -f lavfi -i testsrc2=s=320x240:r=25:d=2 -c:v libx264 -pix_fmt yuv420p -metadata:s:v rotate=90 \
  "$DIR/h264_rotated.mp4"
if [ "${2:-}" = --rate ]; then
  ff -f lavfi -i testsrc2=s=1920x1080:r=30:d=20 -c:v libx264 -b:v 2M -pix_fmt yuv420p -colorspace bt709 \
    "$DIR/rate_1080p_h264.mp4"
fi
ls -l "$DIR"
