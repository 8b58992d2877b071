"""``vau-r1 predict VIDEO``: anomaly yes/no, class, time span and reasoning for one video, plus a timeline PNG.

::

    vau-r1 predict clip.mp4 --model outputs/tag_grpo_qwen2_5_vl_3b --gt-span 3.0 7.5 --out clip_timeline.png
    vau-r1 predict clip.mp4 --model tiny-random --video-preset tiny_cpu --max-new-tokens 16   # CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

#: Model used when neither ``--model`` nor the ``MODEL`` environment variable is given.
DEFAULT_MODEL = "Qwen/Qwen2.5-VL-3B-Instruct"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``vau-r1 predict``."""
    parser = subparsers.add_parser(
        "predict",
        help="answer for one video (anomaly, class, time span, reasoning) and draw its timeline PNG",
        description=(
            "Runs the grounding, classification and two-turn reasoning prompts on one video and writes a "
            "timeline picture: thumbnails of the sampled frames above the predicted (and ground-truth) span."
        ),
    )
    parser.add_argument("video", help="video file")
    parser.add_argument("--model", default=os.environ.get("MODEL", DEFAULT_MODEL),
                        help="run folder, checkpoint, model folder, LoRA adapter, hub id or tiny-random "
                             f"(default: $MODEL, else {DEFAULT_MODEL})")  # fmt: skip
    parser.add_argument("--gt-span", nargs=2, type=float, metavar=("START_S", "END_S"), help="ground-truth span")
    parser.add_argument("--out", help="timeline PNG to write (default: <video name>_timeline.png here)")
    parser.add_argument("--video-preset", default="auto",
                        help="vau_r1/configs/video/ preset; auto: the checkpoint's training sampling, else "
                        "paper_eval_tag")
    parser.add_argument("--prompt-preset", default="default", help="prompt preset (default, paper_eval_think, ...)")
    parser.add_argument("--max-new-tokens", type=int, default=512, help="completion cap per prompt, in tokens")
    parser.add_argument("--dtype", default="auto", help="auto, bfloat16, float16 or float32")
    parser.add_argument("--attn", default="sdpa", help="attention kernel: sdpa, eager or flash_attention_2")
    parser.add_argument("--device", help="cuda, cpu, cuda:1, ... (default: CUDA when available)")
    parser.add_argument("--json", action="store_true", help="print the answers as one JSON object")
    parser.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    """Run ``vau-r1 predict``; exit code 0, or 2 on a bad video, an unloadable model or a bad argument."""
    from vau_r1.apps.predict import predict_video
    from vau_r1.data.video import VideoError
    from vau_r1.eval.generation import GenerationSettings

    if not Path(args.video).is_file():
        print(f"vau-r1 predict: error: video {args.video} not found", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(f"{Path(args.video).stem}_timeline.png")
    try:
        prediction = predict_video(
            args.video, args.model, video_preset=args.video_preset, prompt_preset=args.prompt_preset,
            settings=GenerationSettings(max_new_tokens=args.max_new_tokens),
            model_load={"dtype": args.dtype, "attn_implementation": args.attn}, device=args.device,
            gt_span_s=tuple(args.gt_span) if args.gt_span else None, out_png=out,
        )  # fmt: skip
    except (VideoError, OSError, ValueError) as err:
        print(f"vau-r1 predict: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({**prediction.to_dict(), "png": str(out)}) if args.json else
          f"{prediction.summary()}\ntimeline: {out}")  # fmt: skip
    return 0
