#!/usr/bin/env bash
# `clipfind index` on the GPU machine, end to end, in one device call (issue 32):
#   1. the decoders' ceiling: FFmpeg decoding every frame of the inputs to a
#      null sink, NVDEC (-hwaccel cuda, frames downloaded, NV processes at
#      once) and the CPU (NC single-threaded processes at once), each alone;
#   2. clipfind index --every 1, --every 0.25 and --keyframes with ViT-B/32
#      fp16 on the GPU decode path (--decode auto: NVDEC and CPU decoders
#      together), and --every 1 on the CPU decode path (--decode cpu);
#      on request (RUNS) --every 5 on either path, where decoding skips to
#      the key frame before each sample;
#   3. the peer a user would write (bench/video/peer_index.py: ffmpeg
#      processes + transformers' CLIP fp16 on the same GPU), --every 1, in
#      the forms PEERS names: "parallel" (NC ffmpeg processes at once, on
#      PEER_FILES files: the tuned peer) and "serial" (one ffmpeg process,
#      with its own threads, file after file, as the issue's "an ffmpeg
#      subprocess" reads; on PEER_SERIAL_FILES files) and "serial_nvdec"
#      (the same with -hwaccel cuda: NVDEC decodes, frames come back).
# Each run prints wall time, frames decoded and embedded, decoded frames/s,
# video seconds per second (the realtime factor) and the mean GPU and NVDEC
# utilisation (nvidia-smi, every 200 ms). Lines starting "RESULT" are the
# table's rows (JSON), also in $OUT/gpu_index.jsonl.
#
# Inputs: COPIES copies of each clip in CLIPS (30 s 1080p30, made here by
# scripts/gpu/make-bench-videos.sh and carried), each played LOOPS times
# over into one file (stream copy, key frame to key frame: 60 s by default),
# so a run lasts 20 s or more.
#   CLIPFIND=build/app-gpu/src/app/clipfind bench/video/run_gpu_index_bench.sh
# after scripts/gpu/build-app.sh (which puts FFmpeg in /tmp/ffmpeg).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CLIPFIND=${CLIPFIND:-$ROOT/build/app-gpu/src/app/clipfind}
CLIPS=${CLIPS:-$ROOT/.debs/bench-videos}
COPIES=${COPIES:-64}
LOOPS=${LOOPS:-2}
PEER_FILES=${PEER_FILES:-24}  # the peer is slower: it gets the first PEER_FILES files
PEER_SERIAL_FILES=${PEER_SERIAL_FILES:-8}
PEERS=${PEERS:-parallel serial}
NV=${NV:-14}
NC=${NC:-16}
DEVICE=${DEVICE:-cuda}  # the engine's device (cpu for a dry run without a GPU)
BUDGET=${BUDGET:-420}  # seconds for the whole script; later steps are skipped when short
# Which clipfind runs (the first codec gets them all, the others every1 only),
# and whether the peer runs: a round that re-measures one run can skip the rest.
RUNS=${RUNS:-every1 every0.25 keyframes every1_cpu_decode}
PEER=${PEER:-1}
CEILING=${CEILING:-1}  # 0: skip the decoders' ceilings (run_multi_gpu_bench.sh)
OUT=${OUT:-$ROOT/bench/out}
W=${W:-/tmp/gpu-index-bench}
export PATH=/tmp/ffmpeg/bin:$PATH LD_LIBRARY_PATH=/tmp/ffmpeg/lib:${LD_LIBRARY_PATH:-}
T0=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - T0))); }
mkdir -p "$W/in" "$OUT"
JSONL=$OUT/gpu_index.jsonl
: >"$JSONL"

for clip in "$CLIPS"/*.mp4; do
  for i in $(seq -w 1 "$COPIES"); do
    dst=$W/in/$(basename "${clip%.mp4}")_$i.mp4
    [ -e "$dst" ] || ffmpeg -nostdin -v error -stream_loop $((LOOPS - 1)) -i "$clip" -c copy "$dst" || exit 1
  done
done
[ -d "$W/vitb32" ] || python3 "$ROOT/bench/video/make_random_vit.py" "$W/vitb32" >/dev/null
codecs() { ls "$W/in" | sed 's/_1080p.*//' | sort -u | xargs; }
# Frames and seconds of video per codec (one copy probed, times COPIES).
declare -A FRAMES VSECS
for clip in "$CLIPS"/*.mp4; do
  c=$(basename "$clip" | sed 's/_1080p.*//')
  one=$(ls "$W/in/$(basename "${clip%.mp4}")"_*.mp4 | head -1)
  f=$(ffprobe -v error -count_packets -select_streams v:0 -show_entries stream=nb_read_packets -of csv=p=0 "$one")
  s=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$one")
  FRAMES[$c]=$((f * COPIES))
  VSECS[$c]=$(awk -v s="$s" -v n="$COPIES" 'BEGIN { print s * n }')
done
echo "inputs: $(ls "$W/in" | wc -l) files ($(codecs)), ${COPIES} copies of each clip, ${s} s each; $(nproc) cores"

# gpu_util CMD...: runs CMD while sampling nvidia-smi; sets GPU_BUSY and DEC_BUSY (mean %).
gpu_util() {
  nvidia-smi --query-gpu=utilization.gpu,utilization.decoder --format=csv,noheader,nounits -lms 200 >"$W/smi.csv" &
  local smi=$!
  "$@"
  local rc=$?
  kill $smi 2>/dev/null
  wait $smi 2>/dev/null
  read -r GPU_BUSY DEC_BUSY < <(awk -F', *' '{ g += $1; d += $2; n++ } END { if (n) printf "%.0f %.0f\n", g / n, d / n; else print "0 0" }' "$W/smi.csv")
  return $rc
}
result() {  # result NAME CODEC WALL DECODED EMBEDDED
  local json
  json=$(awk -v name="$1" -v codec="$2" -v wall="$3" -v dec="$4" -v emb="$5" -v vs="${VSECS[$2]}" \
    -v g="$GPU_BUSY" -v d="$DEC_BUSY" 'BEGIN {
      printf "{\"run\":\"%s\",\"codec\":\"%s\",\"wall_s\":%.2f,\"decoded\":%d,\"embedded\":%d,\"decoded_per_s\":%.0f,\"embedded_per_s\":%.1f,\"realtime\":%.1f,\"gpu_busy\":%s,\"nvdec_busy\":%s}",
        name, codec, wall, dec, emb, dec / wall, emb / wall, vs / wall, g, d }')
  echo "RESULT $json"
  echo "$json" >>"$JSONL"
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

for codec in $(codecs); do
  files=("$W/in/${codec}"_*.mp4)
  echo "== $codec: ${#files[@]} files, ${FRAMES[$codec]} frames, ${VSECS[$codec]} s of video"
  # 1. Ceilings: every frame decoded, to a null sink.
  [ "$CEILING" = 1 ] && {
    t=$(now)
    gpu_util sh -c "printf '%s\n' \"\$@\" | xargs -P $NV -I{} ffmpeg -nostdin -v error -hwaccel cuda -i {} -f null -" _ "${files[@]}"
    result "ceiling_nvdec_x$NV" "$codec" "$(since "$t")" "${FRAMES[$codec]}" 0
  }
  [ "$CEILING" = 1 ] && [ "$(left)" -gt 100 ] && {
    t=$(now)
    gpu_util sh -c "printf '%s\n' \"\$@\" | xargs -P $NC -I{} ffmpeg -nostdin -v error -threads 1 -i {} -f null -" _ "${files[@]}"
    result "ceiling_cpu_x$NC" "$codec" "$(since "$t")" "${FRAMES[$codec]}" 0
  }
  # 2. clipfind index.
  for run in "every1:--every 1" "every0.25:--every 0.25" "keyframes:--keyframes" "every1_cpu_decode:--every 1 --decode cpu" \
    "every5:--every 5" "every5_cpu_decode:--every 5 --decode cpu"; do
    name=${run%%:*}
    args=${run#*:}
    [[ " $RUNS " == *" $name "* ]] || continue
    [ "$(left)" -gt 60 ] || { echo "(skipped $name: budget)"; continue; }
    [ "$codec" != "$(codecs | cut -d' ' -f1)" ] && [ "$name" != every1 ] && continue  # other codecs: --every 1 only
    rm -rf "$W/index"
    t=$(now)
    # shellcheck disable=SC2086
    gpu_util "$CLIPFIND" index --index "$W/index" --model "$W/vitb32" --device "$DEVICE" --no-progress $args "${files[@]}" \
      >"$W/index.log" 2>&1
    rc=$?
    wall=$(since "$t")
    grep -vE "^indexed " "$W/index.log" | tail -16
    [ $rc = 0 ] || { echo "clipfind index $args: exit $rc"; continue; }
    # The summary says how many frames were decoded and embedded.
    dec=$(grep -oE '[0-9]+ frames decoded' "$W/index.log" | tail -1 | cut -d' ' -f1)
    emb=$(grep -oE 'indexed \([0-9]+ frames\)' "$W/index.log" | tail -1 | grep -oE '[0-9]+')
    result "clipfind_$name" "$codec" "$wall" "${dec:-0}" "${emb:-0}"
  done
  # 3. The peers, on the first codec only.
  for form in $PEERS; do
    [ "$PEER" = 1 ] && [ "$codec" = "$(codecs | cut -d' ' -f1)" ] && [ "$(left)" -gt 60 ] || continue
    case $form in
      parallel) procs=$NC nfiles=$PEER_FILES name=peer_torch_every1 hw="" ;;
      serial) procs=1 nfiles=$PEER_SERIAL_FILES name=peer_torch_every1_serial hw="" ;;
      serial_nvdec) procs=1 nfiles=$PEER_SERIAL_FILES name=peer_torch_every1_serial_nvdec hw=--hwaccel ;;
      *) echo "PEERS: unknown form '$form' (parallel, serial or serial_nvdec)"; continue ;;
    esac
    t=$(now)
    peer=("${files[@]:0:$nfiles}")
    gpu_util python3 "$ROOT/bench/video/peer_index.py" --model "$W/vitb32" --ffmpeg "$(command -v ffmpeg)" \
      --ffprobe "$(command -v ffprobe)" --every 1 --procs "$procs" $hw "${peer[@]}" >"$W/peer_$form.log" 2>&1
    tail -2 "$W/peer_$form.log"
    emb=$(grep -oE '"frames": [0-9]+' "$W/peer_$form.log" | grep -oE '[0-9]+$')
    # Its inputs are a share of the codec's files: scale the frame and second counts.
    n=${#files[@]}
    FR=${FRAMES[$codec]} VS=${VSECS[$codec]}
    FRAMES[$codec]=$((FR * ${#peer[@]} / n))
    VSECS[$codec]=$(awk -v v="$VS" -v a=${#peer[@]} -v b=$n 'BEGIN { print v * a / b }')
    result "$name" "$codec" "$(since "$t")" "${FRAMES[$codec]}" "${emb:-0}"
    FRAMES[$codec]=$FR VSECS[$codec]=$VS
  done
done
echo "budget left: $(left) s"
