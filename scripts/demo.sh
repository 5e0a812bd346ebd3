#!/usr/bin/env bash
# The main job on a small default: builds clipfind if needed, then tokenizes
# and embeds an image and a few texts with a small model folder, printing the
# image-text cosine similarities.
#
#   scripts/demo.sh [MODEL_DIR] [IMAGE]
#
# The default model is a small random-initialised CLIP folder from the tests
# (no pretrained weights can be downloaded here), so the scores show the
# machinery, not meaning; any Hugging Face CLIP folder works in its place.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-tests/data/models/full_fp32_quickgelu_p32}
image=${2:-../shared/clip-data/CLIP.png}
[ -x build/src/app/clipfind ] || { scripts/install-deps.sh; scripts/build.sh; }
bin=build/src/app/clipfind

texts=("a diagram of a neural network" "a photo of a dog" "a red circle on the left")
echo "model: $model"
echo "== clipfind tokenize"
$bin tokenize --model "$model" "${texts[@]}"
echo "== clipfind embed (normalised), cosine similarity of $image to each text"
args=()
for t in "${texts[@]}"; do args+=(--text "$t"); done
$bin embed --model "$model" --image "$image" "${args[@]}" --json --normalize |
  python3 -c '
import json, sys
texts = sys.argv[1:]
out = json.load(sys.stdin)
img = out["image_embeds"][0]
for t, e in zip(texts, out["text_embeds"]):
    print(f"{sum(a * b for a, b in zip(img, e)):+.4f}  {t}")
' "${texts[@]}"
