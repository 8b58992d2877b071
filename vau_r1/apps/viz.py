"""Timeline picture of one video's prediction: sampled-frame thumbnails above a time axis with the spans.

:func:`save_timeline_png` draws (matplotlib, Agg canvas, no display needed):

* top: up to ``max_thumbnails`` of the frames the model saw, tiled along the time axis so that each
  covers the time closest to its timestamp (:func:`tile_edges`);
* bottom: the predicted anomaly span (red) and, when given, the ground-truth span (green) as bars on
  the same time axis in seconds, with a tick for every sampled frame.

The picture is always ``FIGSIZE_IN * DPI`` pixels (1200 × 360), whatever the video.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = ["DPI", "FIGSIZE_IN", "save_timeline_png", "thumbnails", "tile_edges"]

#: Figure size in inches and resolution: the PNG is 1200 x 360 pixels.
FIGSIZE_IN: tuple[float, float] = (12.0, 3.6)
DPI = 100
PRED_COLOR, GT_COLOR = "#d62728", "#2ca02c"

Span = tuple[float, float]


def thumbnails(frames: torch.Tensor, count: int) -> tuple[np.ndarray, list[int]]:
    """Pick ``count`` evenly spaced frames of float [T, 3, H, W] (0..255) as uint8 [N, H, W, 3].

    Returns:
        ``(images, indices into frames)``.
    """
    total = frames.shape[0]
    indices = sorted({round(i) for i in np.linspace(0, total - 1, min(count, total))})
    images = frames[indices].clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return images, indices


def _valid(span: Span | None) -> bool:
    return span is not None and 0 <= span[0] < span[1]


def tile_edges(times_s: Sequence[float], duration_s: float) -> list[float]:
    """Edges of the thumbnail tiles: from 0 to ``duration_s``, split halfway between consecutive frames.

    >>> tile_edges([0.0, 1.0, 3.0], 4.0)
    [0.0, 0.5, 2.0, 4.0]
    """
    middles = [(a + b) / 2 for a, b in itertools.pairwise(times_s)]
    return [min(0.0, times_s[0]), *middles, max(duration_s, times_s[-1])]


def _draw_strip(ax, images: np.ndarray, edges_s: Sequence[float], spans: list) -> None:
    for image, left, right in zip(images, edges_s[:-1], edges_s[1:], strict=True):
        ax.imshow(image, extent=(left, right, 0, 1), aspect="auto")
    for span, color in spans:
        ax.axvspan(span[0], span[1], color=color, alpha=0.25, lw=0)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.tick_params(labelbottom=False)


def _draw_bars(ax, frame_times_s: Sequence[float], pred_span_s: Span | None, gt_span_s: Span | None) -> None:
    rows = [("predicted", pred_span_s, PRED_COLOR)] + ([("ground truth", gt_span_s, GT_COLOR)] if gt_span_s else [])
    for y, (_label, span, color) in enumerate(reversed(rows)):
        if _valid(span):
            ax.broken_barh([(span[0], span[1] - span[0])], (y + 0.2, 0.6), color=color)
            ax.text(span[1], y + 0.5, f"  {span[0]:.1f}–{span[1]:.1f} s", va="center", fontsize=9)
        else:
            ax.text(0, y + 0.5, "  no anomaly span", va="center", fontsize=9, color="grey")
    ax.vlines(frame_times_s, -0.15, 0.0, color="grey", lw=0.8)
    ax.set_yticks([y + 0.5 for y in range(len(rows))], [label for label, _, _ in reversed(rows)])
    ax.set_ylim(-0.2, len(rows))
    ax.set_xlabel("time (s); ticks: sampled frames")


def save_timeline_png(
    out_path: str | Path,
    frames: torch.Tensor,
    frame_times_s: Sequence[float],
    duration_s: float,
    pred_span_s: Span | None,
    gt_span_s: Span | None = None,
    title: str = "",
    max_thumbnails: int = 10,
) -> Path:
    """Draw the timeline of one prediction and save it as a PNG of fixed size (see the module docstring).

    Args:
        out_path: PNG file to write (parent folders are created).
        frames: the sampled frames, float [T, 3, H, W] in 0..255 (``VideoClip.frames``).
        frame_times_s: timestamp of each frame in seconds, length T.
        duration_s: video length in seconds.
        pred_span_s: predicted ``(start_s, end_s)``, or ``None`` / an empty span for "no anomaly".
        gt_span_s: ground-truth span, drawn when given.
        title: figure title.
        max_thumbnails: most thumbnails in the strip.

    Returns:
        ``out_path``.
    """
    images, indices = thumbnails(frames, max_thumbnails)
    edges = tile_edges([frame_times_s[i] for i in indices], duration_s)
    figure = Figure(figsize=FIGSIZE_IN, dpi=DPI)
    strip, bars = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2.2, 1.0]})
    spans = [(s, c) for s, c in ((pred_span_s, PRED_COLOR), (gt_span_s, GT_COLOR)) if _valid(s)]
    _draw_strip(strip, images, edges, spans)
    _draw_bars(bars, frame_times_s, pred_span_s, gt_span_s)
    bars.set_xlim(edges[0], edges[-1])
    strip.set_title(title, fontsize=11)
    figure.subplots_adjust(left=0.09, right=0.97, top=0.88, bottom=0.16, hspace=0.08)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path, dpi=DPI, format="png")
    return out_path
