#!/bin/bash
# The GPU lab's one entry point: rounds, A/B runs and profiles of the CUDA
# backend on the device machine, each designed to finish inside one device
# call. `bench/gpu/gpu_lab.sh --help` prints the modes and their settings.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1

usage() {
  cat <<'EOF'
usage: bench/gpu/gpu_lab.sh MODE [NAME=VALUE]...

Runs on the device machine from the repository root's copy (carry .debs, made
here by scripts/gpu/fetch-debs.sh, and .deps/cutlass). Settings are
environment variables; NAME=VALUE arguments after MODE set them too. Logs,
JSON lines and tables go to $OUT (default bench/out). Every mode builds with
-DCLIPFIND_EXPERIMENTS=ON, so that the A/B switches (CLIPFIND_CUDA_ATTN,
_SM90_SKIP, _LN_FOLD, _SM_LIMIT, _GEMM_TUNE, ...) are read; LAB_EXPERIMENTS=0
builds as shipped instead (then only CLIPFIND_CUDA_SYNC, _PROFILE, _GRAPHS,
_PREPROCESS and _GEMM_LOG act). The default is the same for every mode, so
modes that share build-gpu/ do not rebuild each other's objects.

modes:
  round      one GPU round (~560 s): build the engine, test_cuda_ops (ops timed
             at real shapes) and test_cuda_model, bench_gpu and bench_frames,
             the per-op profile, an A/B of GEMM autotuning
             (CLIPFIND_CUDA_GEMM_TUNE=0), torch eager, then torch.compile with
             the time left; one table of ours vs PyTorch (OUT/table.md).
               ROUND_BUDGET=560  seconds the round may take
               ROUND_TORCH=0     skip PyTorch     ROUND_COMPILE=0  skip torch.compile
  ab-env     A/B of one environment switch: bench_gpu --quick with AB_VAR set
             to each of AB_VALUES in turn, AB_REPEAT times; items/s side by
             side with the ratio of each value's best to the first value's.
               AB_VAR (required)  AB_VALUES="0 1"  AB_MODELS=B/32  AB_REPEAT=2
  ab-trees   A/B of two source trees: the working tree against an older
             revision packed beforehand with `git archive -o ab-old/old.tar REV`
             (ab-old/ is untracked: it travels); both built in parallel, run
             alternately; ratio new/old.
               AB_OLD_TAR=ab-old/old.tar  AB_MODELS=B/32  AB_REPEAT=3
  quick      a short round for kernel work: test_cuda_ops (filter QC_FILTER)
             and test_cuda_model (QC_MODEL_FILTER), then an ab-env of QC_AB_VAR
             if set, and a per-op profile of the batch-1 passes
             (CLIPFIND_CUDA_PROFILE=graph) of QC_PROFILE_MODEL.
               QC_FILTER='*'  QC_MODEL_FILTER='*'  QC_AB_VAR  QC_AB_VALUES="0 1"
               QC_AB_MODELS=B/32,L/14  QC_AB_REPEAT=2  QC_PROFILE=1  QC_PROFILE_MODEL=B/32
  gemm-race  the large GEMMs: checks every sm90 kernel against the CPU
             (CudaOps.Sm90GemmVariants, or GX_FILTER), races every kernel per
             GEMM shape for each GX_MODELS entry (gemm_table.py: times, TFLOP/s,
             SM clock and power), an A/B of whole passes over the GX_AB settings
             ("-" for none) GX_REPEAT times, and the per-op profile of
             GX_PROFILE_MODEL under the first and last setting. Builds in build-gx/.
               GX_MODELS="B/32:1024 L/14:256"  GX_AB="-"  GX_REPEAT=2  GX_FILTER
               GX_PROFILE=1  GX_PROFILE_MODEL=B/32:1024
  siglip     SigLIP against PyTorch (issue 26): bench_gpu on SL_MODELS at
             batches 1 and 256, torch_bench_siglip.py eager, then
             torch.compile on SL_COMPILE_MODELS with the time left; one table.
             First, if set, test_cuda_ops on SL_TEST_FILTER (CudaOpsPerf cases
             timed) and, with SL_MODEL_TEST=1, test_cuda_model.
               SL_MODELS=SO400M/14,B/16-384  SL_COMPILE_MODELS=B/16-384
               SL_BUDGET=560  seconds the whole mode may take
               SL_TEST_FILTER  SL_MODEL_TEST=0
  ncu        check, time and profile one kernel: test_cuda_ops cases in
             NP_TEST_FILTER; CudaOpsPerf cases in NP_TIME_FILTER timed
             (CLIPFIND_OPS_TIME=1); launch NP_SKIP of the kernels matching the
             regex NP_KERNEL under NP_PROFILE_FILTER through Nsight Compute at the
             GPU's own clocks (details page, per-SASS-line stall reasons to
             OUT/np_*); whole passes with the per-op profile for NP_BENCH.
               NP_TEST_FILTER  NP_TIME_FILTER  NP_KERNEL  NP_SKIP=0
               NP_PROFILE_FILTER='*'  NP_BENCH (MODEL:BATCH)

examples (OUT=$OUT as the device tool gives it):
  ROUND_COMPILE=0 bench/gpu/gpu_lab.sh round
  bench/gpu/gpu_lab.sh ab-env AB_VAR=CLIPFIND_CUDA_LN_FOLD AB_MODELS=B/32,L/14
  bench/gpu/gpu_lab.sh ab-env AB_VAR=CLIPFIND_CUDA_ATTN AB_VALUES="auto mma simt"
  git archive -o ab-old/old.tar HEAD~1 && bench/gpu/gpu_lab.sh ab-trees   # the tar here, the run there
  bench/gpu/gpu_lab.sh quick QC_FILTER='CudaOps.*Attention*' QC_AB_VAR=CLIPFIND_CUDA_ATTN QC_AB_VALUES="auto mma"
  bench/gpu/gpu_lab.sh gemm-race GX_AB="CLIPFIND_CUDA_CUTLASS=0 -"
  bench/gpu/gpu_lab.sh ncu NP_KERNEL=attn_wgmma NP_PROFILE_FILTER=CudaOpsPerf.AttentionOccupancy

Table helpers (also usable on fetched logs): round_table.py OUT,
ab_table.py OUT PREFIX LABEL ARM..., gemm_table.py LOG. The correctness round
is scripts/gpu/verify_round.sh.
EOF
}

MODE=${1:-}
case "$MODE" in
  round | ab-env | ab-trees | quick | gemm-race | siglip | ncu) shift ;;
  -h | --help | help) usage; exit 0 ;;
  "") usage >&2; exit 2 ;;
  *) echo "gpu_lab.sh: unknown mode '$MODE' (round, ab-env, ab-trees, quick, gemm-race, siglip, ncu; --help)" >&2; exit 2 ;;
esac
for a in "$@"; do
  case "$a" in
    -h | --help) usage; exit 0 ;;
    [A-Za-z_]*=*) export "${a?}" ;;
    *) echo "gpu_lab.sh $MODE: arguments are NAME=VALUE settings, not '$a' (--help)" >&2; exit 2 ;;
  esac
done

# ---- the shared preamble: carried packages, CUTLASS, gpu_configure, OUT, stamp ----
source scripts/gpu/gpu_build.sh
LAB_CMAKE=()
[ "${LAB_EXPERIMENTS:-1}" = 1 ] && LAB_CMAKE=(-DCLIPFIND_EXPERIMENTS=ON)
BUILD="build-gpu"
lab_configure() {  # lab_configure SRC BUILD LOG: sm_90, the lab's CMake options
  gpu_configure "$1" "$2" 90 "${LAB_CMAKE[@]}" >"$3" 2>&1
}

# run_torch LIMIT SCRIPT ARGS...: a PyTorch baseline (bench/gpu/torch_bench*.py)
# for at most LIMIT seconds, its JSON lines into $OUT/bench.jsonl and its
# output appended to $OUT/torch.log; prints its exit status and the cases it
# skipped for want of time.
run_torch() {
  local limit=$1 script=$2 rc before
  shift 2
  before=$(cat "$OUT/torch.log" 2>/dev/null | wc -l)
  PYTHONUNBUFFERED=1 timeout "$limit" python3 "$script" "$@" --json "$OUT/bench.jsonl" >>"$OUT/torch.log" 2>&1
  rc=$?
  echo "$(basename "$script") $* exit $rc"
  [ $rc -ne 0 ] && tail -5 "$OUT/torch.log"
  tail -n +$((before + 1)) "$OUT/torch.log" | grep "^# skip"
}

# ---- round --------------------------------------------------------------------------
# Logs go to $OUT (the device tool brings back 8 files at most: build.log,
# test_cuda_ops.log, test_cuda_model.log, bench_gpu.log, torch.log,
# bench.jsonl, table.md, plus the caller's own log).
mode_round() {
  local budget=${ROUND_BUDGET:-560} rc rem
  left() { echo $((budget - ($(date +%s) - T0))); }  # T0: from gpu_build.sh
  export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1

  stamp "configure"
  lab_configure . $BUILD "$OUT/build.log" || { tail -40 "$OUT/build.log"; echo "configure failed"; }
  stamp "build"
  build_targets $BUILD "$OUT/build.log" clip_cuda test_cuda_ops bench_gpu bench_frames test_cuda_model test_cuda_preprocess
  stamp "built"

  if [ -x $BUILD/tests/test_cuda_ops ]; then
    stamp "test_cuda_ops"
    CLIPFIND_OPS_TIME=1 CLIPFIND_CUDA_GEMM_LOG=1 run_gtest "$OUT/test_cuda_ops.log" 150 $BUILD/tests/test_cuda_ops
    grep -E " us " "$OUT/test_cuda_ops.log" | grep -v "^gemm M=" | head -70
    echo "sm90 vs cuBLASLt at real shapes (first-call tuning):"
    grep -E "^gemm M=(51200|65792) " "$OUT/test_cuda_ops.log" | head -30
  fi
  if [ -x $BUILD/tests/test_cuda_model ]; then
    stamp "test_cuda_model"
    run_gtest "$OUT/test_cuda_model.log" 240 $BUILD/tests/test_cuda_model
    grep -E ": done in" "$OUT/test_cuda_model.log" | head -30
  fi

  rm -f "$OUT/bench.jsonl"
  if [ -x $BUILD/bench/gpu/bench_gpu ]; then
    stamp "bench_gpu"
    timeout 150 $BUILD/bench/gpu/bench_gpu --json "$OUT/bench.jsonl" >"$OUT/bench_gpu.log" 2>&1
    rc=$?; echo "bench_gpu exit $rc"; [ $rc -ne 0 ] && tail -5 "$OUT/bench_gpu.log"
    grep "^#" "$OUT/bench_gpu.log"
    timeout 90 $BUILD/bench/gpu/bench_frames --json "$OUT/bench.jsonl" 2>&1 | tail -5
    stamp "per-op profile"
    CLIPFIND_CUDA_PROFILE=1 timeout 60 $BUILD/bench/gpu/bench_gpu --models B/32,L/14 --quick >>"$OUT/bench_gpu.log" 2>&1
    grep -E "^# profile|^#   " "$OUT/bench_gpu.log" | head -80
    stamp "GEMM autotuning A/B (CLIPFIND_CUDA_GEMM_TUNE=0: cuBLASLt's first heuristic pick)"
    CLIPFIND_CUDA_GEMM_TUNE=0 timeout 60 $BUILD/bench/gpu/bench_gpu --models B/32 --quick >>"$OUT/bench_gpu.log" 2>&1
    grep '"engine"' "$OUT/bench_gpu.log" | tail -5 | sed 's/^/untuned: /'
  fi
  if [ "${ROUND_TORCH:-1}" = 0 ]; then
    echo "PyTorch skipped (ROUND_TORCH=0)"
  else
    stamp "torch eager"
    rm -f "$OUT/torch.log"
    run_torch 170 bench/gpu/torch_bench.py --mode eager
  fi
  rem=$(($(left) - 25))
  if [ "${ROUND_COMPILE:-1}" = 0 ] || [ "${ROUND_TORCH:-1}" = 0 ]; then
    echo "torch.compile skipped (ROUND_COMPILE=0)"
  elif [ $rem -gt 90 ]; then
    stamp "torch compile (budget ${rem} s)"
    run_torch $((rem + 15)) bench/gpu/torch_bench.py --mode compile --budget $rem
  else
    echo "no time left for torch.compile"
  fi

  stamp "table"
  python3 bench/gpu/round_table.py "$OUT" | tee "$OUT/table.md"
  stamp "done"
}

# ---- siglip -------------------------------------------------------------------------
mode_siglip() {
  local budget=${SL_BUDGET:-560} models=${SL_MODELS:-SO400M/14,B/16-384} rc rem
  local tests=() filter=${SL_TEST_FILTER:-}
  left() { echo $((budget - ($(date +%s) - T0))); }
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1
  rm -f "$OUT/bench.jsonl"
  [ -n "$filter" ] && tests+=(test_cuda_ops)
  [ "${SL_MODEL_TEST:-0}" = 1 ] && tests+=(test_cuda_model)
  stamp "build"
  if ! { lab_configure . $BUILD "$OUT/build.log" && build_targets $BUILD "$OUT/build.log" bench_gpu "${tests[@]}"; }; then
    echo "build failed"; return 1
  fi
  if [ -n "$filter" ]; then
    stamp "test_cuda_ops $filter"
    CLIPFIND_OPS_TIME=1 timeout 120 $BUILD/tests/test_cuda_ops --gtest_filter="$filter" >"$OUT/test_cuda_ops.log" 2>&1
    rc=$?; echo "test_cuda_ops exit $rc"
    grep -E "^\[  (PASSED|FAILED) |^\[  FAILED|^  attention " "$OUT/test_cuda_ops.log" | head -60
  fi
  if [ "${SL_MODEL_TEST:-0}" = 1 ]; then
    stamp "test_cuda_model"
    timeout 120 $BUILD/tests/test_cuda_model >"$OUT/test_cuda_model.log" 2>&1
    rc=$?; echo "test_cuda_model exit $rc"
    grep -E "^\[  (PASSED|FAILED) |^\[  FAILED" "$OUT/test_cuda_model.log" | head -20
  fi
  stamp "bench_gpu"
  timeout 150 $BUILD/bench/gpu/bench_gpu --models "$models" --batches 1,256 --json "$OUT/bench.jsonl" \
    >"$OUT/bench_gpu.log" 2>&1
  rc=$?; echo "bench_gpu exit $rc"; [ $rc -ne 0 ] && tail -5 "$OUT/bench_gpu.log"
  stamp "torch eager"
  rm -f "$OUT/torch.log"
  run_torch 150 bench/gpu/torch_bench_siglip.py --mode eager --models "$models"
  rem=$(($(left) - 25))
  if [ $rem -gt 120 ]; then
    stamp "torch compile (budget ${rem} s)"
    run_torch $((rem + 15)) bench/gpu/torch_bench_siglip.py --mode compile --models "${SL_COMPILE_MODELS:-B/16-384}" \
      --budget $rem
  else
    echo "no time left for torch.compile"
  fi
  stamp "table"
  python3 bench/gpu/round_table.py "$OUT" | tee "$OUT/table.md"
  stamp "done"
}

# ---- ab-env -------------------------------------------------------------------------
mode_ab_env() {
  local var=${AB_VAR:?set AB_VAR to the switch to compare, e.g. CLIPFIND_CUDA_LN_FOLD}
  local models=${AB_MODELS:-B/32} repeat=${AB_REPEAT:-2} values=${AB_VALUES:-0 1} i v
  if ! { lab_configure . $BUILD "$OUT/ab_build.log" && cmake --build $BUILD -j16 --target bench_gpu >>"$OUT/ab_build.log" 2>&1; }; then
    grep -E "error" "$OUT/ab_build.log" | head -20; echo "build failed"; return 1
  fi
  for v in $values; do rm -f "$OUT/ab_$v.jsonl"; done  # runs append to these
  for i in $(seq "$repeat"); do
    for v in $values; do
      env "$var=$v" timeout 150 $BUILD/bench/gpu/bench_gpu --models "$models" --quick --json "$OUT/ab_$v.jsonl" \
        >>"$OUT/ab_run.log" 2>&1 || echo "bench_gpu $var=$v exit $?"
    done
  done
  # shellcheck disable=SC2086  # the values are the arms
  python3 bench/gpu/ab_table.py "$OUT" ab_ "$var" $values
}

# ---- ab-trees -----------------------------------------------------------------------
mode_ab_trees() {
  local models=${AB_MODELS:-B/32} repeat=${AB_REPEAT:-3} tar=${AB_OLD_TAR:-ab-old/old.tar}
  local old=/tmp/ab-old-tree d t i
  [ -f "$tar" ] || { echo "no $tar: pack the old revision with git archive first"; return 1; }
  rm -rf "$old" && mkdir -p "$old" && tar -xf "$tar" -C "$old"
  for d in .deps .debs; do [ -e "$d" ] && ln -sfn "$ROOT/$d" "$old/$d"; done
  tree_bin() { echo "$([ "$1" = old ] && echo "$old" || echo "$ROOT")/build-gpu/bench/gpu/bench_gpu"; }
  build_tree() {  # $1 = source tree, $2 = log
    lab_configure "$1" "$1/build-gpu" "$2" && cmake --build "$1/build-gpu" -j8 --target bench_gpu >>"$2" 2>&1
  }
  build_tree "$old" "$OUT/ab_old_build.log" &
  build_tree "$ROOT" "$OUT/ab_new_build.log"
  wait
  for t in old new; do
    [ -x "$(tree_bin $t)" ] || { grep -E "error" "$OUT/ab_${t}_build.log" | head; echo "build of the $t tree failed"; return 1; }
  done
  rm -f "$OUT"/ab_tree_*.jsonl
  for i in $(seq "$repeat"); do
    for t in old new; do
      timeout 150 "$(tree_bin $t)" --models "$models" --quick --json "$OUT/ab_tree_$t.jsonl" >>"$OUT/ab_tree_run.log" 2>&1 ||
        echo "bench_gpu ($t) exit $?"
    done
  done
  python3 bench/gpu/ab_table.py "$OUT" ab_tree_ "" old new
}

# ---- quick --------------------------------------------------------------------------
mode_quick() {
  lab_configure . $BUILD "$OUT/qc_build.log"
  build_targets $BUILD "$OUT/qc_build.log" test_cuda_ops test_cuda_model bench_gpu
  stamp "built"
  run_gtest "$OUT/qc_ops.log" 200 $BUILD/tests/test_cuda_ops --gtest_filter="${QC_FILTER:-*}"
  grep -E "cases" "$OUT/qc_ops.log"
  run_gtest "$OUT/qc_model.log" 150 $BUILD/tests/test_cuda_model --gtest_filter="${QC_MODEL_FILTER:-*}"
  stamp "tested"
  if [ -n "${QC_AB_VAR:-}" ]; then
    AB_VAR=$QC_AB_VAR AB_VALUES="${QC_AB_VALUES:-0 1}" AB_MODELS=${QC_AB_MODELS:-B/32,L/14} AB_REPEAT=${QC_AB_REPEAT:-2} \
      mode_ab_env
    stamp "A/B done"
  fi
  if [ "${QC_PROFILE:-1}" = 1 ]; then
    CLIPFIND_CUDA_PROFILE=graph timeout 100 $BUILD/bench/gpu/bench_gpu --models "${QC_PROFILE_MODEL:-B/32}" --batches 1 \
      >"$OUT/qc_profile.log" 2>&1
    grep -v "^$" "$OUT/qc_profile.log" | head -120
  fi
  stamp "done"
}

# ---- gemm-race ----------------------------------------------------------------------
# New kernels to try go into sm90_gemm_kernel.cuh's list for a round; the race
# shows where each would win.
mode_gemm_race() {
  local build=build-gx models=${GX_MODELS:-B/32:1024 L/14:256} m tag i k pm
  local -a ab
  read -r -a ab <<<"${GX_AB:--}"
  lab_configure . $build "$OUT/gx_build.log"
  build_targets $build "$OUT/gx_build.log" test_cuda_ops bench_gpu || return 1
  stamp "built"
  run_gtest "$OUT/gx_ops.log" 300 $build/tests/test_cuda_ops --gtest_filter="${GX_FILTER:-CudaOps.Sm90GemmVariants}"
  stamp "tested"

  gx_bench() {  # gx_bench SETTING MODEL:BATCH LOG [extra bench_gpu args]
    local setting=$1 m=$2 log=$3
    shift 3
    local envs=()
    [ "$setting" != "-" ] && envs=("$setting")
    env "${envs[@]}" timeout 200 $build/bench/gpu/bench_gpu --models "${m%%:*}" --batches "${m##*:}" "$@" >"$log" 2>&1 ||
      echo "bench_gpu $setting $m exit $?"
  }

  for m in $models; do
    tag=${m//\//}; tag=${tag//:/_}
    CLIPFIND_CUDA_GEMM_LOG=1 gx_bench - "$m" "$OUT/gx_race_$tag.log"
    echo "## race $m"
    python3 bench/gpu/gemm_table.py "$OUT/gx_race_$tag.log"  # then the SM clock and power of each measurement
  done
  stamp "raced"

  for i in $(seq "${GX_REPEAT:-2}"); do
    for k in "${!ab[@]}"; do
      for m in $models; do
        [ "$i" -gt 1 ] && [ "${m%%:*}" != B/32 ] && continue  # the large models once
        gx_bench "${ab[$k]}" "$m" "$OUT/gx_ab_run.log" --json "$OUT/gx_ab_$k.jsonl"
      done
    done
  done
  echo "## A/B arms: $(for k in "${!ab[@]}"; do echo -n "$k=${ab[$k]}  "; done)"
  # shellcheck disable=SC2046  # one arm per index
  python3 bench/gpu/ab_table.py "$OUT" gx_ab_ "" $(seq 0 $((${#ab[@]} - 1)))
  stamp "A/B done"

  if [ "${GX_PROFILE:-1}" = 1 ]; then
    pm=${GX_PROFILE_MODEL:-B/32:1024}
    for k in 0 $((${#ab[@]} - 1)); do
      CLIPFIND_CUDA_PROFILE=1 gx_bench "${ab[$k]}" "$pm" "$OUT/gx_profile.log"
      echo "## profile $pm ${ab[$k]}"
      grep "^#" "$OUT/gx_profile.log" | grep -A12 "vision n=${pm##*:}"
    done
  fi
  rm -f "$OUT/gx_ab_run.log" "$OUT/gx_profile.log"  # summarised above; the fetch takes 8 files
  stamp "done"
}

# ---- ncu ----------------------------------------------------------------------------
mode_ncu() {
  local bin=$BUILD/tests/test_cuda_ops ncu prof
  lab_configure . $BUILD "$OUT/np_build.log"
  build_targets $BUILD "$OUT/np_build.log" test_cuda_ops bench_gpu || return 1
  stamp "built"
  if [ -n "${NP_TEST_FILTER:-}" ]; then
    run_gtest "$OUT/np_test.log" 200 $bin --gtest_filter="$NP_TEST_FILTER"
    stamp "tested"
  fi
  if [ -n "${NP_TIME_FILTER:-}" ]; then
    CLIPFIND_OPS_TIME=1 timeout 200 $bin --gtest_filter="$NP_TIME_FILTER" 2>&1 | grep -E "^  |OK|FAILED|SKIPPED" | tee "$OUT/np_time.log"
    stamp "timed"
  fi
  ncu=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
  if [ -n "${NP_KERNEL:-}" ]; then
    CLIPFIND_OPS_TIME=1 timeout 300 "$ncu" --clock-control none --kernel-name "regex:$NP_KERNEL" --launch-skip "${NP_SKIP:-0}" \
      --launch-count 1 --set full --import-source no -f -o "$OUT/np" $bin --gtest_filter="${NP_PROFILE_FILTER:-*}" \
      >"$OUT/np_ncu.log" 2>&1
    echo "ncu exit $?"; tail -3 "$OUT/np_ncu.log"
    "$ncu" --import "$OUT/np.ncu-rep" --page details >"$OUT/np_details.txt" 2>&1
    "$ncu" --import "$OUT/np.ncu-rep" --page source --csv --print-source sass >"$OUT/np_source.csv" 2>&1
    grep -E "Duration|SM Frequency|Issue Slots Busy|Warp Cycles Per Issued|Achieved Active Warps|Registers Per|DRAM Throughput|Compute \(SM\)" \
      "$OUT/np_details.txt" | head -20
    stamp "profiled"
  fi
  if [ -n "${NP_BENCH:-}" ]; then
    for prof in 0 1; do  # the throughput, then the per-op profile
      CLIPFIND_CUDA_PROFILE=$prof timeout 200 $BUILD/bench/gpu/bench_gpu --models "${NP_BENCH%%:*}" \
        --batches "${NP_BENCH##*:}" >"$OUT/np_bench$prof.log" 2>&1
      echo "bench_gpu (profile $prof) exit $?"
      grep -v "^$" "$OUT/np_bench$prof.log" | head -40
    done
    stamp "benched"
  fi
}

case "$MODE" in
  round) mode_round ;;
  ab-env) mode_ab_env ;;
  ab-trees) mode_ab_trees ;;
  quick) mode_quick ;;
  gemm-race) mode_gemm_race ;;
  siglip) mode_siglip ;;
  ncu) mode_ncu ;;
esac
