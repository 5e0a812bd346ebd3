#!/usr/bin/env bash
# Makes the clips bench/video/run_gpu_index_bench.sh indexes on the GPU
# machine (which has no H.264/HEVC encoder), with Debian's ffmpeg here: 30 s
# of 1080p30 each, H.264 (x264's default preset) and HEVC (x265), 1 Mb/s,
# GOP 3 s with B-frames, BT.709 limited range; testsrc2 with temporal noise,
# so that the encoders spend their bits as on camera footage. About 7.5 MB
# (the benchmark loops each twice there, without re-encoding, into 60 s
# inputs: 60 s clips would not fit a device call's 64 MiB beside the other
# carried files); carry the folder (default .debs/bench-videos).
#   scripts/gpu/make-bench-videos.sh [DIR]
set -euo pipefail
DIR=${1:-.debs/bench-videos}
mkdir -p "$DIR"
SRC=(-f lavfi -i "testsrc2=s=1920x1080:r=30:d=30,noise=alls=8:allf=t")
TAGS=(-pix_fmt yuv420p -colorspace bt709 -color_primaries bt709 -color_trc bt709 -color_range tv)
[ -f "$DIR/h264_1080p30_30s.mp4" ] ||
  ffmpeg -nostdin -v error "${SRC[@]}" -c:v libx264 -b:v 1M -g 90 "${TAGS[@]}" "$DIR/h264_1080p30_30s.mp4"
[ -f "$DIR/hevc_1080p30_30s.mp4" ] ||
  ffmpeg -nostdin -v error "${SRC[@]}" -c:v libx265 -x265-params log-level=error -b:v 1M -g 90 "${TAGS[@]}" \
    -tag:v hvc1 "$DIR/hevc_1080p30_30s.mp4"
ls -l "$DIR"
