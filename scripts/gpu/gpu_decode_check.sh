#!/usr/bin/env bash
# One device call for issue 32: builds FFmpeg and clipfind (build-app.sh),
# runs the colour-conversion and NVDEC tests, `clipfind index` on NVDEC
# against the CPU decoder (test_gpu_index: cosines, faulty files, resume),
# measures the NVDEC decode rate through decode_video_gpu and, for the
# ceiling, the ffmpeg program with -hwaccel cuda to a null sink. Needs .debs
# (fetch-debs.sh, fetch-ffmpeg.sh) and .debs/videos (make-test-videos.sh DIR
# --rate, with its faults/).
# Logs go to $OUT (default bench/out).
set -uo pipefail
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader
scripts/gpu/build-app.sh build/app-gpu test_yuv_to_rgb test_gpu_decode test_gpu_index clipfind 2>&1 | tee "$OUT/build.log"
[ "${PIPESTATUS[0]}" = 0 ] || exit 1
cp /tmp/ffmpeg-configure.log "$OUT/" 2>/dev/null
B=build/app-gpu/tests
V=.debs/videos
echo "=== test_yuv_to_rgb"
$B/test_yuv_to_rgb 2>&1 | tee "$OUT/test_yuv_to_rgb.log" | grep -E "yuv420_to_rgb:|Failure|^\[  (PASSED|FAILED|SKIPPED)" -A2
echo "=== test_gpu_decode"
CLIPFIND_GPU_TEST_VIDEOS=$V CLIPFIND_GPU_DECODE_RATE=$V/rate_1080p_h264.mp4 $B/test_gpu_decode 2>&1 |
  tee "$OUT/test_gpu_decode.log" | grep -E "frames, |RATE|broken file|Failure|^\[  (PASSED|FAILED|SKIPPED)" -A3
echo "=== test_gpu_index"
CLIPFIND_GPU_TEST_VIDEOS=$V $B/test_gpu_index 2>&1 | tee "$OUT/test_gpu_index.log" |
  grep -E "COSINE|FAULTS|RESUME|warning:|Failure|^\[  (PASSED|FAILED|SKIPPED)" -A3
echo "=== ffmpeg -hwaccel cuda ceiling (frames downloaded to the host), 1080p H.264"
export PATH=/tmp/ffmpeg/bin:$PATH LD_LIBRARY_PATH=/tmp/ffmpeg/lib:${LD_LIBRARY_PATH:-}
frames=$(ffprobe -v error -count_packets -select_streams v:0 -show_entries stream=nb_read_packets -of csv=p=0 $V/rate_1080p_h264.mp4)
for n in 1 4 7 14; do
  t0=$(date +%s.%N)
  for i in $(seq $n); do ffmpeg -nostdin -v error -hwaccel cuda -i $V/rate_1080p_h264.mp4 -f null - & done
  wait
  t1=$(date +%s.%N)
  awk -v n=$n -v f="$frames" -v a=$t0 -v b=$t1 \
    'BEGIN { printf "FFMPEG nvdec processes=%d: %d frames in %.2f s: %.0f frames/s\n", n, n * f, b - a, n * f / (b - a) }'
done | tee "$OUT/ffmpeg_ceiling.log"
