#!/usr/bin/env bash
# Paper Table C, co-training rows: one Qwen2.5-VL-3B-Instruct trained by GRPO on several tasks at once, evaluated on
# anomaly classification (binary and multi-class accuracy, w/o and w/ think) on the pooled MSAD + UCF-Crime + ECVA
# test set: "+ RFT w/ QA-TAG" (data.tasks=[qa,tag]) and "+ RFT w/ QA-TAG-CLS" (STAGES=rft, the default), the
# baseline again for comparison (STAGES=base; table_c_cls.sh makes the same folder and it is reused), and a co-trained
# SFT control with no paper row (STAGES=sft). Experiments: vau_r1/configs/experiment/cotrain_{grpo,sft}_<model>.yaml.
#   VAU_DATA_ROOT=/data/vau_bench NGPUS=2 scripts/table_c_cotrain.sh
#   TASK_WEIGHTS="{qa:1.0,tag:1.0,cls:2.0}" OUT=outputs_cls2 scripts/table_c_cotrain.sh   # another task mix
# TASK_WEIGHTS sets data.task_weights of every co-training run (default: every usable row once per task; the
# paper's mix is not published). Paper numbers and denominators: scripts/README.md.
STAGES="${STAGES:-rft}"  # the co-trained rows by default (common.sh's default would add the baseline)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# train_cotrain ALGORITHM NAME TASKS: cotrain_<algorithm>_<model> on TASKS (e.g. qa,tag) into RUN=$OUT/NAME.
train_cotrain() {
  local cfg weights=()
  cfg="$(model_cfg "$MODEL")"  # a plain assignment, so that `set -e` stops on an unknown model
  if [ -n "${TASK_WEIGHTS:-}" ]; then weights=("data.task_weights=$TASK_WEIGHTS"); fi
  train_experiment "cotrain_$1_$cfg" "$2" "data.tasks=[$3]" "run_name=$2" "${weights[@]}"
}

if want base; then eval_cls_rows "$MODEL" "$(model_label "$MODEL")"; fi
if want rft; then
  cfg="$(model_cfg "$MODEL")"
  train_cotrain grpo "cotrain_qa_tag_grpo_$cfg" qa,tag
  eval_cls_rows "$RUN" "$(basename "$RUN")"
  train_cotrain grpo "cotrain_grpo_$cfg" qa,tag,cls
  eval_cls_rows "$RUN" "$(basename "$RUN")"
fi
if want sft; then
  # "w/ think" SFT targets: TRAIN_ARGS="data.prompt_preset=paper_sft_think" (see the experiment's header).
  cfg="$(model_cfg "$MODEL")"
  train_cotrain sft "cotrain_sft_$cfg" qa,tag,cls
  eval_cls_rows "$RUN" "$(basename "$RUN")"
fi
