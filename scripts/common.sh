#!/usr/bin/env bash
# Settings and helpers shared by the paper-table scripts (sourced by table_*.sh, not run on its own).
#
# Environment (or the first argument of a table script, for VAU_DATA_ROOT):
#   VAU_DATA_ROOT  VAU-Bench folder: annotations/{train,test_msad,test_ucf_crime,test_ecva}.csv and
#                  videos/ (flat, or msad/, ucf/, ecva/ sub-folders). Required.
#   ANNOTATIONS    annotation folder (default $VAU_DATA_ROOT/annotations)
#   VIDEOS         video folder (default $VAU_DATA_ROOT/videos)
#   MODEL          base model: hub id or folder (default Qwen/Qwen2.5-VL-3B-Instruct)
#   OUT            output folder (default outputs)
#   NGPUS          processes per job, one per GPU (default 1)
#   STAGES         which rows to run: any of "base rft sft" (default "base rft"; add sft for the SFT rows)
#   PROTOCOLS      eval protocols, w/o think then w/ think (default "paper_no_think paper_think", the paper's
#                  prompts and sampling; "matched_no_think matched" evaluates as trained, vau_r1/configs/eval/protocol/)
#   JUDGE          VAU-Eval judge config in vau_r1/configs/judge/ (default deepseek, needs DEEPSEEK_API_KEY), or none
#   EVAL_ARGS      extra eval overrides, e.g. "batch_size=4 model_load.attn_implementation=flash_attention_2"
#   TRAIN_ARGS     extra training overrides, e.g. "logger=wandb"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VAU_DATA_ROOT="${1:-${VAU_DATA_ROOT:-}}"
if [ -z "$VAU_DATA_ROOT" ]; then
  echo "error: set VAU_DATA_ROOT (or pass it as the first argument) to the VAU-Bench folder" >&2
  exit 2
fi
ANNOTATIONS="${ANNOTATIONS:-$VAU_DATA_ROOT/annotations}"
VIDEOS="${VIDEOS:-$VAU_DATA_ROOT/videos}"
MODEL="${MODEL:-Qwen/Qwen2.5-VL-3B-Instruct}"
OUT="${OUT:-outputs}"
export NGPUS="${NGPUS:-1}"
STAGES="${STAGES:-base rft}"
PROTOCOLS="${PROTOCOLS:-paper_no_think paper_think}"
JUDGE="${JUDGE:-deepseek}"
read -r -a EVAL_EXTRA <<< "${EVAL_ARGS:-}"
read -r -a TRAIN_EXTRA <<< "${TRAIN_ARGS:-}"

declare -A TEST_CSV=([msad]=test_msad.csv [ucf]=test_ucf_crime.csv [ecva]=test_ecva.csv)
declare -A DATASET=([msad]=MSAD [ucf]=UCF-Crime [ecva]=ECVA)

# Is stage $1 (base, rft, sft) selected in STAGES?
want() { [[ " $STAGES " == *" $1 "* ]]; }

# Experiment suffix of a base model (vau_r1/configs/experiment/<task>_grpo_<suffix>.yaml).
model_cfg() {
  case "$1" in
    *Qwen2.5-VL-3B*) echo qwen2_5_vl_3b ;;
    *Qwen2-VL-2B*) echo qwen2_vl_2b ;;
    *) echo "error: no GRPO experiment for MODEL=$1 (paper: Qwen2-VL-2B, Qwen2.5-VL-3B)" >&2; return 2 ;;
  esac
}

# A short label for output folders: the model folder or hub name.
model_label() { basename "$1"; }

# train_experiment NAME [RUN_NAME [overrides...]]: train vau_r1/configs/experiment/NAME.yaml from MODEL into
# RUN=$OUT/RUN_NAME (default NAME) with the overrides; resumes an interrupted run (resume=auto) and returns at
# once when the run has finished.
train_experiment() {
  local name="$1"
  RUN="$OUT/${2:-$1}"
  shift $(($# < 2 ? $# : 2))
  scripts/train.sh "experiment=$name" "model.name_or_path=$MODEL" "data.annotations=$ANNOTATIONS/train.csv" \
    "data.video_root=$VIDEOS" "output_dir=$RUN" resume=auto "$@" "${TRAIN_EXTRA[@]}"
}

# train_rft TASK: GRPO of MODEL on TASK with the paper's settings (<task>_grpo_<model> experiment).
train_rft() {
  local cfg
  cfg="$(model_cfg "$MODEL")"  # a plain assignment, so that `set -e` stops on an unknown model
  train_experiment "$1_grpo_$cfg"
}

# train_sft TASK: the SFT baseline of MODEL on TASK (<task>_sft_<model> experiment, trained by the same entry).
# A model without a paper SFT experiment file stops with a message instead of guessing.
train_sft() {
  local cfg name
  cfg="$(model_cfg "$MODEL")"
  name="$1_sft_$cfg"
  if [ ! -f "vau_r1/configs/experiment/$name.yaml" ]; then
    echo "STAGES=sft: vau_r1/configs/experiment/$name.yaml is missing: no paper SFT experiment for this model" >&2
    exit 2
  fi
  train_experiment "$name"
}

# evaluate MODEL_REF LABEL TASK DATASET PROTOCOL [overrides...]: one eval run into $OUT/eval/LABEL/...
# The paper's protocol evaluates with other prompts and sampling than training on purpose, so the parity
# warning is silenced there (allow_mismatch); each report still lists the differences.
evaluate() {
  local ref="$1" label="$2" task="$3" ds="$4" protocol="$5" allow=false
  shift 5
  if [[ "$protocol" == paper_* ]]; then allow=true; fi
  scripts/evaluate.sh "model=$ref" "task=$task" "protocol=$protocol" "source=$ds" "dataset=${DATASET[$ds]}" \
    "annotations=$ANNOTATIONS/${TEST_CSV[$ds]}" "video_root=$VIDEOS" model_load.dtype=bfloat16 \
    "allow_mismatch=$allow" "output_dir=$OUT/eval/$label/${task}_${ds}_${protocol}" "$@" "${EVAL_EXTRA[@]}"
}

# eval_task MODEL_REF LABEL TASK "DATASET...": TASK under each protocol of PROTOCOLS on each listed test set
# (msad, ucf, ecva), one eval run each into $OUT/eval/LABEL/<task>_<dataset>_<protocol>.
eval_task() {
  local ref="$1" label="$2" task="$3" ds protocol
  for ds in $4; do
    for protocol in $PROTOCOLS; do
      evaluate "$ref" "$label" "$task" "$ds" "$protocol"
    done
  done
}

# eval_cls_rows MODEL_REF LABEL: Table C's columns, CLS w/o and w/ think on the three test sets, then the pooled
# table (table_c_cls.sh and table_c_cotrain.sh).
eval_cls_rows() {
  eval_task "$1" "$2" cls "msad ucf ecva"
  summarize "$OUT/eval/$2"/cls_*/ --pool "MSAD+UCF-Crime+ECVA"
}

# Overrides that switch the VAU-Eval judge on (none with JUDGE=none).
judge_args() { if [ "$JUDGE" != none ]; then echo "judge=$JUDGE"; fi; }

# summarize REPORT_DIR... [--pool NAME]: print the paper-style tables of finished eval runs.
summarize() {
  if [ -n "${DRY_RUN:-}" ]; then echo "vau-r1 eval table $*"; return; fi
  python -m vau_r1.cli eval table "$@"
}
