"""Answer for one video file: is there an anomaly, of which class, when, and why (``vau-r1 predict``).

The video is decoded once; three prompts run on it: the grounding prompt (``tag``: Normal/Anomaly and
a ``[start_s, end_s]`` span), the classification prompt (``cls``: one of the 20 labels) and the two-turn
reasoning prompt (description, then analysis, video attached once). ``anomaly`` is read from the
grounding answer (``Anomaly``/``Normal``), else from its span (``[-1, -1]`` means none), else from the
class (``Normal`` or not).

Example::

    from vau_r1.apps.predict import predict_video
    prediction = predict_video("clip.mp4", model="outputs/tag_grpo_qwen2_5_vl_3b", out_png="clip.png")
    prediction.anomaly, prediction.anomaly_class, prediction.span_s, prediction.analysis
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vau_r1.data.schema import CLASS_LABELS, NORMAL_LABEL, VideoSample
from vau_r1.data.video import VideoClip, VideoConfig, load_clip
from vau_r1.data.vision import video_inputs
from vau_r1.eval.generation import GenerationSettings, generate_texts
from vau_r1.model.families import family_of, video_processing_for
from vau_r1.rewards import parsing
from vau_r1.tasks import PROMPT_PRESETS, build_messages, build_reasoning_turns, get_preset

__all__ = ["VideoPrediction", "predict_clip", "predict_video", "task_presets"]

logger = logging.getLogger(__name__)

#: ``video_preset="auto"`` without a checkpoint manifest: the paper's TAG/CLS eval sampling (2 fps).
DEFAULT_VIDEO_PRESET = "paper_eval_tag"


@dataclass
class VideoPrediction:
    """The answers for one video.

    Attributes:
        video: the file.
        duration_s: its length in seconds.
        frame_times_s: timestamps of the frames the model saw.
        anomaly: ``True``/``False``, or ``None`` when no answer could be parsed.
        anomaly_class: one of the 20 labels, or ``None``.
        span_s: predicted anomaly ``(start_s, end_s)``; ``None`` when there is none.
        description: reasoning turn 1.
        analysis: reasoning turn 2.
        texts: raw completions: ``tag``, ``cls``, ``description``, ``analysis``.
        prompt_presets: preset used per task.
    """

    video: str
    duration_s: float
    frame_times_s: list[float]
    anomaly: bool | None
    anomaly_class: str | None
    span_s: tuple[float, float] | None
    description: str
    analysis: str
    texts: dict[str, str] = field(default_factory=dict)
    prompt_presets: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    def summary(self) -> str:
        """A few human-readable lines."""
        answer = {True: "yes", False: "no", None: "unclear"}[self.anomaly]
        span = "none" if self.span_s is None else f"{self.span_s[0]:.1f}–{self.span_s[1]:.1f} s"
        return "\n".join([
            f"video: {self.video} ({self.duration_s:.1f} s, {len(self.frame_times_s)} frames sampled)",
            f"anomaly: {answer}", f"class: {self.anomaly_class or 'unclear'}", f"time span: {span}",
            f"description: {self.description.strip()}", f"analysis: {self.analysis.strip()}",
        ])  # fmt: skip


def task_presets(prompt_preset: str) -> dict[str, str]:
    """Preset per task: ``prompt_preset`` where the task has it, else ``default``.

    Raises:
        ValueError: no task has a preset of that name (the message lists the names).
    """
    known = sorted({name for presets in PROMPT_PRESETS.values() for name in presets})
    if prompt_preset not in known:
        raise ValueError(f"unknown prompt preset {prompt_preset!r}; expected one of {known}")
    presets = {}
    for task in ("tag", "cls", "reasoning"):
        presets[task] = prompt_preset if prompt_preset in PROMPT_PRESETS[task] else "default"
        if presets[task] != prompt_preset:
            logger.info("task %s has no prompt preset %r; using 'default'", task, prompt_preset)
    if get_preset("reasoning", presets["reasoning"]).second_turn is None:
        presets["reasoning"] = "default"
    return presets


def _decide(tag_text: str, label: str | None) -> tuple[bool | None, tuple[float, float] | None]:
    """``(anomaly, span_s)`` from the grounding answer, its span and the class label."""
    answer, span = parsing.parse_anomaly(tag_text), parsing.parse_span(tag_text)
    valid = span if span is not None and 0 <= span[0] < span[1] else None
    if answer is not None:
        anomaly = answer != NORMAL_LABEL
    elif span is not None:
        anomaly = valid is not None
    else:
        anomaly = None if label is None else label != NORMAL_LABEL
    return anomaly, (valid if anomaly is not False else None)


def predict_clip(
    clip: VideoClip, model: Any, tokenizer: Any, settings: GenerationSettings, prompt_preset: str = "default"
) -> VideoPrediction:
    """Run the tag, cls and reasoning prompts on a decoded clip (see the module docstring)."""
    presets = task_presets(prompt_preset)
    sample, family = VideoSample(Path(clip.path).name, None, 0), family_of(model)
    video = video_inputs(clip, **video_processing_for(model.config))  # the model's patches and normalisation

    def generate(messages_list: list, task: str) -> list[str]:
        flag = get_preset(task, presets[task]).add_vision_id
        outs = generate_texts(model, tokenizer, messages_list, [video] * len(messages_list), settings,
                              family=family, add_vision_id=flag, keys=[clip.path] * len(messages_list))  # fmt: skip
        return [g.text for g in outs]

    tag_text = generate([build_messages(sample, "tag", presets["tag"], video=clip.path, duration_s=clip.duration_s)],
                        "tag")[0]  # fmt: skip
    cls_text = generate([build_messages(sample, "cls", presets["cls"], video=clip.path)], "cls")[0]
    turns = build_reasoning_turns(sample, presets["reasoning"], video=clip.path)
    description = generate([turns.first], "reasoning")[0]
    analysis = generate([turns.history(description)], "reasoning")[0]
    label = parsing.parse_label(cls_text, CLASS_LABELS)
    anomaly, span = _decide(tag_text, label)
    texts = {"tag": tag_text, "cls": cls_text, "description": description, "analysis": analysis}
    return VideoPrediction(clip.path, clip.duration_s, list(clip.timestamps_s), anomaly, label, span,
                           description, analysis, texts, presets)  # fmt: skip


def resolve_predict_video_config(preset: str, manifest: Mapping[str, Any] | None) -> VideoConfig:
    """``auto``: the checkpoint's training sampling, else :data:`DEFAULT_VIDEO_PRESET`; or a preset name."""
    if preset == "auto":
        if manifest is not None and manifest.get("video"):
            return VideoConfig.from_dict(manifest["video"])
        preset = DEFAULT_VIDEO_PRESET
    return VideoConfig.from_preset(preset)


def resolve_device(device: str | None) -> str:
    """``device``, or CUDA when available else CPU; a CUDA device on a machine without one is a ``ValueError``."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: this machine has no CUDA device (torch {torch.__version__}); use cpu")
    return device


def predict_video(
    video: str | Path,
    model: str = "Qwen/Qwen2.5-VL-3B-Instruct",
    *,
    video_preset: str = "auto",
    prompt_preset: str = "default",
    settings: GenerationSettings | None = None,
    model_load: Mapping[str, Any] | None = None,
    device: str | None = None,
    gt_span_s: tuple[float, float] | None = None,
    out_png: str | Path | None = None,
) -> VideoPrediction:
    """Load a model, answer for one video, and optionally draw the timeline PNG.

    Args:
        video: the video file.
        model: model reference (:func:`vau_r1.eval.loading.resolve_model_ref`).
        video_preset: ``auto`` or a name in ``vau_r1/configs/video/``.
        prompt_preset: prompt preset (``default``, ``paper_eval_think``, ...).
        settings: decoding settings (default: greedy, 512 new tokens).
        model_load: :data:`vau_r1.eval.loading.LOAD_KEYS` settings.
        device: ``cuda``, ``cpu``, ...; default: CUDA when available.
        gt_span_s: ground-truth span drawn in the PNG.
        out_png: where to write the timeline PNG (:func:`vau_r1.apps.viz.save_timeline_png`); ``None`` for none.

    Raises:
        vau_r1.data.video.VideoError: the video cannot be decoded.
        ValueError: an unknown prompt preset or a device this machine lacks.
    """
    from vau_r1.apps.viz import save_timeline_png
    from vau_r1.eval.loading import load_for_eval, resolve_model_ref

    task_presets(prompt_preset)  # an unknown name fails before the model loads
    device = resolve_device(device)
    ref = resolve_model_ref(model)
    clip = load_clip(video, resolve_predict_video_config(video_preset, ref.manifest))
    net, tokenizer = load_for_eval(ref, model_load)
    net.to(device)
    prediction = predict_clip(clip, net, tokenizer, settings or GenerationSettings(max_new_tokens=512), prompt_preset)
    if out_png is not None:
        answer = {True: "anomaly", False: "normal", None: "unclear"}[prediction.anomaly]
        title = f"{Path(video).name} — {ref.label}: {answer}" + (f" ({prediction.anomaly_class})"
                                                                 if prediction.anomaly_class else "")  # fmt: skip
        save_timeline_png(out_png, clip.frames, clip.timestamps_s, clip.duration_s, prediction.span_s, gt_span_s,
                          title)  # fmt: skip
    return prediction
