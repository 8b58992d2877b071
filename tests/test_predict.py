"""``vau-r1 predict`` on a synthetic video with the tiny model: answers, the timeline PNG, the answer logic."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from vau_r1.apps.predict import _decide, resolve_predict_video_config, task_presets
from vau_r1.apps.viz import DPI, FIGSIZE_IN, save_timeline_png
from vau_r1.cli import main as cli_main
from vau_r1.data.synthetic import write_synthetic_video
from vau_r1.data.video import VideoConfig

PNG_SIZE = (int(FIGSIZE_IN[0] * DPI), int(FIGSIZE_IN[1] * DPI))


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A 4-s 64x48 clip with a red square from 1.5 s to 3 s."""
    return write_synthetic_video(tmp_path_factory.mktemp("clip") / "fire.mp4", duration_s=4.0, fps=4.0,
                                 event=(1.5, 3.0))  # fmt: skip


def test_cli_predict_writes_answers_and_a_timeline_png(video, tmp_path, capsys):
    out = tmp_path / "timeline.png"
    args = ["predict", str(video), "--model", "tiny-random", "--video-preset", "tiny_cpu", "--max-new-tokens", "8",
            "--gt-span", "1.5", "3.0", "--out", str(out), "--json"]  # fmt: skip
    assert cli_main(args) == 0
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"anomaly", "anomaly_class", "span_s", "description", "analysis", "texts", "png"} <= set(answer)
    assert set(answer["texts"]) == {"tag", "cls", "description", "analysis"}
    assert answer["duration_s"] == 4.0 and len(answer["frame_times_s"]) == 8  # tiny_cpu: 2 fps
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == PNG_SIZE == (1200, 360)


def test_cli_predict_reports_a_missing_video(tmp_path, capsys):
    assert cli_main(["predict", str(tmp_path / "nope.mp4"), "--model", "tiny-random"]) == 2
    assert "nope.mp4 not found" in capsys.readouterr().err


def test_timeline_png_without_a_predicted_span(tmp_path):
    frames = torch.rand(6, 3, 56, 56) * 255
    path = save_timeline_png(tmp_path / "a" / "t.png", frames, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5], 3.0, None, (1.0, 2.0))
    with Image.open(path) as image:
        assert image.size == PNG_SIZE
        pixels = image.convert("RGB").getdata()
        assert (44, 160, 44) in set(pixels)  # the ground-truth bar (#2ca02c) is drawn


@pytest.mark.parametrize(
    ("tag_text", "label", "expected"),
    [
        # An explicit answer and a valid span.
        ("<think>x</think><answer>Anomaly</answer><glue>[1.0, 2.5]</glue>", "Fire", (True, (1.0, 2.5))),
        # "Normal" wins over a stray span, and a normal video has no span.
        ("<answer>Normal</answer><glue>[1.0, 2.5]</glue>", "Fire", (False, None)),
        # No answer (the paper's no-think prompt asks for the span only): [-1, -1] means no anomaly.
        ("<glue>[-1.0, -1.0]</glue>", None, (False, None)),
        # No answer, a real span: an anomaly there.
        ("<glue>[0.5, 1.0]</glue>", None, (True, (0.5, 1.0))),
        # Nothing parseable in the grounding answer: fall back on the class.
        ("no idea", "Fire", (True, None)),
        ("no idea", "Normal", (False, None)),
        ("no idea", None, (None, None)),
    ],
)
def test_anomaly_decision(tag_text, label, expected):
    assert _decide(tag_text, label) == expected


def test_presets_fall_back_per_task_and_video_preset_follows_the_checkpoint():
    # paper_grpo exists for tag and cls but not for reasoning.
    assert task_presets("paper_grpo") == {"tag": "paper_grpo", "cls": "paper_grpo", "reasoning": "default"}
    manifest = {"video": {**VideoConfig.from_preset("tiny_cpu").to_dict(), "fps": 1.5}}
    assert resolve_predict_video_config("auto", manifest).fps == 1.5
    assert resolve_predict_video_config("auto", None) == VideoConfig.from_preset("paper_eval_tag")
