#!/usr/bin/env bash
# Paper Table A: multiple-choice QA accuracy (w/o and w/ think) and VAU-Eval reasoning scores (CLS, KM, FLU,
# INF, FAC, Total) on MSAD and UCF-Crime, for one base model: its zero-shot row (STAGES=base), its RFT row
# (GRPO on QA, STAGES=rft) and its SFT row (STAGES=sft). Expected numbers: scripts/README.md.
#   VAU_DATA_ROOT=/data/vau_bench MODEL=Qwen/Qwen2.5-VL-3B-Instruct NGPUS=2 scripts/table_a_qa_reasoning.sh
#   MODEL=Qwen/Qwen2-VL-2B-Instruct scripts/table_a_qa_reasoning.sh /data/vau_bench
#   MODEL=Qwen/Qwen2.5-VL-7B-Instruct STAGES=base scripts/table_a_qa_reasoning.sh /data/vau_bench   # zero-shot only
# Denominators: QA 240 (MSAD, all rows) and 251 (UCF-Crime, 290 minus 39 rows without a question).
# Reasoning is judged by DeepSeek (JUDGE=deepseek, DEEPSEEK_API_KEY); JUDGE=none keeps the predictions only.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# eval_rows MODEL_REF LABEL: QA w/o and w/ think, then reasoning (+ judge), on MSAD and UCF-Crime.
eval_rows() {
  local ref="$1" label="$2" ds
  for ds in msad ucf; do
    eval_task "$ref" "$label" qa "$ds"
    # Reasoning has one two-turn prompt per protocol family: one run (the last protocol's) fills the columns.
    evaluate "$ref" "$label" reasoning "$ds" "${PROTOCOLS##* }" $(judge_args)
  done
  summarize "$OUT/eval/$label"/qa_*/ "$OUT/eval/$label"/reasoning_*/
}

if want base; then eval_rows "$MODEL" "$(model_label "$MODEL")"; fi
if want rft; then
  train_rft qa
  eval_rows "$RUN" "$(basename "$RUN")"
fi
if want sft; then
  # vau_r1/configs/experiment/qa_sft_<model>.yaml (algorithm: sft) through the same training entry. "w/ think" SFT targets:
  # TRAIN_ARGS="data.prompt_preset=paper_sft_think" (see the experiment's header).
  train_sft qa
  eval_rows "$RUN" "$(basename "$RUN")"
fi
