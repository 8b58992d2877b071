"""Settings that make a planned GRPO step fit ``gpu_memory_gb``: each a single change, re-estimated.

The video knobs (``data.video.max_frames``, ``max_pixels``, ``total_pixels``) are searched against the settings
bound (:func:`vau_r1.apps.plan_tokens.settings_bound`), so a suggested value fits every plausible clip.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from vau_r1.apps.plan_memory import Arch, Precision, Shapes, Trainable, estimate
from vau_r1.apps.plan_tokens import VideoTokens, settings_bound
from vau_r1.data.video import VideoConfig

#: Pixels of one visual token per frame pair: a 28 x 28 block (patch 14 x merge 2).
TOKEN_PIXELS = 28 * 28


def _peak(arch: Arch, shapes: Shapes, prec: Precision, train: Trainable) -> float:
    return estimate(arch, shapes, prec, train).peak()[1]


def _largest(low: int, high: int, ok: Callable[[int], bool]) -> int | None:
    """The largest ``n`` in ``[low, high]`` with ``ok(n)`` for a monotone ``ok``, or ``None``."""
    if high < low or not ok(low):
        return None
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if ok(mid) else (low, mid - 1)
    return low


def _video_knobs(config: VideoConfig, max_tokens: int, max_duration_s: float) -> list[str]:
    """Overrides of ``data.video`` whose settings bound stays within ``max_tokens`` visual tokens."""
    out = []

    def fits(**change: Any) -> bool:
        try:
            return settings_bound(dataclasses.replace(config, **change), max_duration_s)[0] <= max_tokens
        except ValueError:
            return False

    if config.fps is not None:
        step = config.frame_factor
        frames = _largest(max(config.min_frames, step) // step, config.max_frames // step,
                          lambda k: fits(max_frames=k * step))  # fmt: skip
        if frames is not None:
            out.append(f"data.video.max_frames={frames * step}")
    pixels = _largest(max(1, -(-config.min_pixels // TOKEN_PIXELS)), config.max_pixels // TOKEN_PIXELS,
                      lambda k: fits(max_pixels=k * TOKEN_PIXELS))  # fmt: skip
    if pixels is not None:
        out.append(f"data.video.max_pixels={pixels * TOKEN_PIXELS}")
    total = _largest(1, (config.total_pixels or max_tokens * 2 * TOKEN_PIXELS) // TOKEN_PIXELS,
                     lambda k: fits(total_pixels=k * TOKEN_PIXELS))  # fmt: skip
    if total is not None:
        out.append(f"data.video.total_pixels={total * TOKEN_PIXELS}")
    return out


def _option(setting: str, peak: float, budget: float) -> dict[str, Any]:
    return {"setting": setting, "peak_gb": round(peak / 1e9, 3), "fits": peak <= budget}


def suggestions(
    arch: Arch, shapes: Shapes, prec: Precision, train: Trainable, plan: Any, video: VideoConfig, visual: VideoTokens
) -> list[dict[str, Any]]:
    """Single changes and their peaks; the largest G and visual-token count that fit ``plan.gpu_memory_gb``."""
    budget = plan.gpu_memory_gb * 1e9
    out: list[dict[str, Any]] = []
    if not prec.gradient_checkpointing:
        gc = dataclasses.replace(prec, gradient_checkpointing=True)
        out.append(_option("model.gradient_checkpointing=true", _peak(arch, shapes, gc, train), budget))
    if shapes.logprob_chunk_tokens is None:
        chunked = dataclasses.replace(shapes, logprob_chunk_tokens=512)
        out.append(_option("grpo.logprob_chunk_tokens=512", _peak(arch, chunked, prec, train), budget))
    if prec.strategy != "zero3":
        processes = prec.processes if prec.processes > 1 else 8
        zero3 = dataclasses.replace(prec, strategy="zero3", processes=processes)
        setting = "trainer.strategy=zero3" + ("" if prec.processes > 1 else " trainer.num_processes=8")
        out.append(_option(setting, _peak(arch, shapes, zero3, train), budget))

    def fits_g(g: int) -> bool:
        return _peak(arch, dataclasses.replace(shapes, generations=g), prec, train) <= budget

    best_g = _largest(2, 64, fits_g)
    out.append({"setting": f"grpo.num_generations={best_g}" if best_g else "no grpo.num_generations >= 2 fits",
                "note": "largest G that fits", "fits": best_g is not None})  # fmt: skip
    text = shapes.prompt_tokens - shapes.visual_tokens

    def fits_v(v: int) -> bool:
        changed = dataclasses.replace(shapes, visual_tokens=v, prompt_tokens=text + v)
        return _peak(arch, changed, prec, train) <= budget

    best_v = _largest(0, max(4 * visual.bound, 4 * shapes.visual_tokens, 1024), fits_v)
    if best_v:
        knobs = _video_knobs(video, best_v, plan.max_duration_s) if best_v < visual.bound else []
        out.append({"setting": " or ".join(knobs) or "the current video settings",
                    "note": f"at most {best_v} visual tokens per video fit (settings bound {visual.bound})",
                    "fits": True})  # fmt: skip
    return out
