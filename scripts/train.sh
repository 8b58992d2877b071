#!/usr/bin/env bash
# Launch GRPO training with torchrun on one node or several; every argument is a Hydra override.
#
#   NGPUS=8 scripts/train.sh experiment=qa_grpo_qwen2_5_vl_3b data.annotations=... data.video_root=...
#   NGPUS=2 scripts/train.sh experiment=debug_cpu output_dir=outputs/ddp         # 2 CPU processes (gloo)
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 NGPUS=8 scripts/train.sh experiment=...   # on node 0
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 NGPUS=8 scripts/train.sh experiment=...   # on node 1
#
# Environment: NGPUS (processes per node, default 1), NNODES (default 1), NODE_RANK (default 0),
# MASTER_ADDR / MASTER_PORT (only with NNODES > 1; default port 29500). DRY_RUN=1 prints the command instead.
set -euo pipefail

NGPUS="${NGPUS:-1}"
NNODES="${NNODES:-1}"
export TOKENIZERS_PARALLELISM="${TOKENIZERS_PARALLELISM:-false}"
if [ -n "${DRY_RUN:-}" ]; then
  echo "NGPUS=$NGPUS vau_r1.apps.train $*"
  exit 0
fi

if [ "$NNODES" -gt 1 ]; then
  : "${MASTER_ADDR:?set MASTER_ADDR to the address of node 0 when NNODES > 1}"
  exec torchrun --nnodes "$NNODES" --node_rank "${NODE_RANK:-0}" --nproc_per_node "$NGPUS" \
    --master_addr "$MASTER_ADDR" --master_port "${MASTER_PORT:-29500}" -m vau_r1.apps.train "$@"
fi
exec torchrun --standalone --nproc_per_node "$NGPUS" -m vau_r1.apps.train "$@"
