#!/usr/bin/env bash
# Paper Table C: task co-training ablation for anomaly classification (binary and multi-class accuracy, w/o and
# w/ think) on the pooled MSAD + UCF-Crime + ECVA test set, for Qwen2.5-VL-3B-Instruct: the baseline
# (STAGES=base), RFT w/ CLS, RFT w/ QA and RFT w/ TAG (STAGES=rft; the QA and TAG runs are shared with
# table_a/table_b and reused when present) and SFT w/ CLS (STAGES=sft). The co-trained rows (QA-TAG,
# QA-TAG-CLS) are table_c_cotrain.sh's.
#   VAU_DATA_ROOT=/data/vau_bench NGPUS=2 scripts/table_c_cls.sh
# Each test set is evaluated on its own, then `vau-r1 eval table --pool` merges them (n-weighted, exact).
# Denominator: our pooled set has 929 rows (rows with a class label: 240 + 251 + 438); the paper's 932 is
# 240 + 290 + 402 [inferred], see scripts/README.md.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if want base; then eval_cls_rows "$MODEL" "$(model_label "$MODEL")"; fi
if want rft; then
  for task in cls qa tag; do
    train_rft "$task"
    eval_cls_rows "$RUN" "$(basename "$RUN")"
  done
fi
if want sft; then
  # vau_r1/configs/experiment/cls_sft_<model>.yaml (algorithm: sft) through the same training entry. "w/ think" SFT targets:
  # TRAIN_ARGS="data.prompt_preset=paper_sft_think" (see the experiment's header).
  train_sft cls
  eval_cls_rows "$RUN" "$(basename "$RUN")"
fi
