#!/usr/bin/env bash
# Load test of `clipfind serve` (issue 6): 100,000 planted frames under
# models/shapes-clip (bench/video/make_planted_index.cpp), then wrk with 32 connections for 30 s of text searches
# (bench/server/queries.lua rotates 200 phrases). Prints requests/s and the
# latency percentiles; target on the 2-core CI machine: p99 < 100 ms, no errors.
#
#   bench/server/run_load.sh [FRAMES] [CONNECTIONS] [SECONDS]
#   BUILD=build-serve (default) WORK=/tmp/clipfind-load-bench (default)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-serve}
WORK=${WORK:-/tmp/clipfind-load-bench}
FRAMES=${1:-100000}
CONNECTIONS=${2:-32}
SECONDS_=${3:-30}
MODEL=$ROOT/models/shapes-clip
command -v wrk >/dev/null || { echo "run_load.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

ninja -C "$BUILD" clipfind clipfind_index clip_engine >/dev/null
mkdir -p "$WORK"
g++ -std=c++20 -O2 -march=native -I"$ROOT/src" "$ROOT/bench/video/make_planted_index.cpp" \
    "$BUILD/src/index/libclipfind_index.a" "$BUILD/src/clip/libclip_engine.a" -lsqlite3 -pthread \
    -o "$WORK/make_planted_index"
rm -rf "$WORK/index"
"$WORK/make_planted_index" "$WORK/index" "$MODEL" "$FRAMES" 128  # 128: shapes-clip's projection_dim

"$BUILD/src/app/clipfind" serve --index "$WORK/index" --port 0 --device cpu >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q "listening on" "$WORK/serve.out" 2>/dev/null && break
  sleep 0.2
done
URL=$(grep -o 'http://127.0.0.1:[0-9]*' "$WORK/serve.out" | head -1)
[ -n "$URL" ] || { echo "run_load.sh: the server did not start:" >&2; cat "$WORK/serve.err" >&2; exit 1; }
head -1 "$WORK/serve.out"

curl -sf "$URL/api/search?q=warm+up" >/dev/null
echo "== wrk -t2 -c$CONNECTIONS -d${SECONDS_}s --latency -s bench/server/queries.lua $URL"
wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_}s" --latency --timeout 10s -s "$ROOT/bench/server/queries.lua" "$URL" \
  | tee "$WORK/wrk.out"
echo "== encoder after the run: $(curl -s "$URL/api/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["encoder"])')"
