#!/usr/bin/env bash
# Evaluation on NGPUS processes (default 1): scripts/evaluate.sh model=<ref> task=<task> key=value ...
#   NGPUS=4 scripts/evaluate.sh model=outputs/qa_grpo_qwen2_5_vl_3b task=qa protocol=paper_think source=msad \
#       annotations=$VAU_DATA_ROOT/annotations/test_msad.csv video_root=$VAU_DATA_ROOT/videos
# Several processes shard the videos: each rank loads the model on its GPU and writes its own part, rank 0
# merges and scores. Rerunning the same command resumes. Overrides go to Hydra (vau_r1/configs/eval/eval.yaml).
# DRY_RUN=1 prints the command instead of running it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NGPUS="${NGPUS:-1}"
if [ -n "${DRY_RUN:-}" ]; then
  echo "NGPUS=$NGPUS vau_r1.apps.evaluate $*"
  exit 0
fi
if [ "$NGPUS" -gt 1 ]; then
  exec torchrun --standalone --nproc_per_node "$NGPUS" -m vau_r1.apps.evaluate "$@"
fi
exec python -m vau_r1.apps.evaluate "$@"
