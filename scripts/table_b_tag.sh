#!/usr/bin/env bash
# Paper Table B: temporal anomaly grounding (mIoU, R@0.3/0.5/0.7, w/o and w/ think) on MSAD, ECVA and UCF-Crime
# (out of distribution: training uses MSAD and ECVA rows only), for one base model: its zero-shot row
# (STAGES=base), its RFT row (GRPO on TAG, STAGES=rft) and its SFT row (STAGES=sft).
# Expected numbers: scripts/README.md.
#   VAU_DATA_ROOT=/data/vau_bench MODEL=Qwen/Qwen2.5-VL-3B-Instruct NGPUS=2 scripts/table_b_tag.sh
#   MODEL=Qwen/Qwen2.5-VL-7B-Instruct STAGES=base scripts/table_b_tag.sh /data/vau_bench   # zero-shot only
# Denominators: rows with an annotated anomaly interval: 120 (MSAD), 402 (ECVA), 124 (UCF-Crime).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# eval_rows MODEL_REF LABEL: TAG w/o and w/ think on the three test sets.
eval_rows() {
  eval_task "$1" "$2" tag "msad ecva ucf"
  summarize "$OUT/eval/$2"/tag_*/
}

if want base; then eval_rows "$MODEL" "$(model_label "$MODEL")"; fi
if want rft; then
  train_rft tag
  eval_rows "$RUN" "$(basename "$RUN")"
fi
if want sft; then
  # vau_r1/configs/experiment/tag_sft_<model>.yaml (algorithm: sft) through the same training entry. "w/ think" SFT targets:
  # TRAIN_ARGS="data.prompt_preset=paper_sft_think" (see the experiment's header).
  train_sft tag
  eval_rows "$RUN" "$(basename "$RUN")"
fi
