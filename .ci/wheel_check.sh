#!/usr/bin/env bash
# A non-editable install works from an empty folder: build a wheel from this checkout, install it into a fresh
# venv (torch pinned first, so no CUDA wheel), then train, evaluate, predict and run the quick demo from an
# empty directory. Called by .ci/run; takes a few minutes.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled TOKENIZERS_PARALLELISM=false
"$repo/.venv/bin/pip" wheel -q --no-deps -w "$work/dist" "$repo"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q torch==2.13.0
"$work/venv/bin/pip" install -q "$work"/dist/vau_r1-*.whl
mkdir "$work/empty" && cd "$work/empty"
bin="$work/venv/bin"
"$bin/vau-r1" train experiment=debug_cpu output_dir="$work/run" trainer.max_steps=2 trainer.save_every=2 > "$work/train.log" 2>&1
"$bin/vau-r1" eval run model="$work/run" task=tag annotations="$work/run/mini_bench/train.csv" \
  video_root="$work/run/mini_bench/videos" video_preset=tiny_cpu protocol=matched output_dir="$work/eval" \
  generation.max_new_tokens=16 progress=false > "$work/eval.log" 2>&1
test -s "$work/eval/report.json"
video="$(ls "$work/run/mini_bench/videos" | head -n 1)"
"$bin/vau-r1" predict "$work/run/mini_bench/videos/$video" --model "$work/run" --video-preset tiny_cpu \
  --max-new-tokens 16 --json --out "$work/timeline.png" > "$work/predict.json"
test -s "$work/timeline.png"
"$bin/vau-r1" demo --quick --out "$work/demo" --no-progress > "$work/demo.log" 2>&1
test -s "$work/demo/results.json"
echo "wheel check ok: train, eval run, predict and demo --quick from an empty folder"
