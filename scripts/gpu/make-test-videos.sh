#!/usr/bin/env bash
# Makes the small clips the NVDEC tests (tests/test_gpu_decode.cpp,
# tests/test_gpu_index.cpp) decode on both paths, with Debian's ffmpeg
# (libx264, libx265, libvpx) here, since the GPU machine has no H.264/HEVC
# encoder; and the faulty files of test_gpu_index (faults/: bytes zeroed in
# the middle, cut short, a profile and a codec NVDEC does not take, a size
# change midway). With --rate also the 1080p30 H.264 clip
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
F=$DIR/faults
mkdir -p "$F"
# Index at the front (faststart), so that a cut-short copy still opens.
ff $SRC -c:v libx264 -pix_fmt yuv420p -movflags +faststart "$F/whole.mp4"
size=$(stat -c %s "$F/whole.mp4")
cp "$F/whole.mp4" "$F/corrupt_middle.mp4"
dd if=/dev/zero of="$F/corrupt_middle.mp4" bs=1 seek=$((size / 2)) count=4096 conv=notrunc status=none
head -c $((size * 6 / 10)) "$F/whole.mp4" >"$F/truncated.mp4"
rm "$F/whole.mp4"
# H.264 4:4:4 (NVDEC decodes H.264 in 4:2:0 only) and VP8 (no NVDEC hwaccel
# in the GPU machine's FFmpeg, scripts/gpu/build-app.sh).
ff $SRC -c:v libx264 -pix_fmt yuv444p "$F/h264_yuv444.mp4"
ff $SRC -c:v libvpx -b:v 500k "$F/vp8.webm"
# 2 s at 320x240 then 2 s at 640x360 in one MPEG-TS stream (TS segments
# concatenate byte for byte; the second's timestamps continue the first's).
ff -f lavfi -i testsrc2=s=320x240:r=25:d=2 -c:v libx264 -pix_fmt yuv420p "$F/part1.ts"
ff -f lavfi -i testsrc2=s=640x360:r=25:d=2 -c:v libx264 -pix_fmt yuv420p -output_ts_offset 2 "$F/part2.ts"
cat "$F/part1.ts" "$F/part2.ts" >"$F/size_change.ts"
rm "$F/part1.ts" "$F/part2.ts"
if [ "${2:-}" = --rate ]; then
  ff -f lavfi -i testsrc2=s=1920x1080:r=30:d=20 -c:v libx264 -b:v 2M -pix_fmt yuv420p -colorspace bt709 \
    "$DIR/rate_1080p_h264.mp4"
fi
ls -l "$DIR" "$F"
