"""Synthetic VAU scenes: a seeded layout (:class:`Scene`) and its frames, rendered with numpy for all frames at once.

Every scene is a fixed camera on a yard: a wall with a shelf and a box at the top, and a ground with two lanes in
which cars drive in one direction (the *flow*). A scene *kind* adds one event inside its span ``[start_s, end_s)``:

=============  ==================  ============================================================================
kind           class               event
=============  ==================  ============================================================================
``normal``     ``Normal``          none: the cars keep their lanes and speed, the box stays on the shelf
``falling``    ``Object_falling``  the box drops off the shelf, hits the ground (squashed) and lies there
``collision``  ``Traffic_accident`` a faster car rear-ends the car ahead of it; both stop and shake
``wrong_way``  ``Traffic_accident`` a car drives against the flow, entering and leaving the frame in the span
``fire``       ``Fire``            a flickering orange-yellow flame grows in front of the wall, then goes out
``explosion``  ``Explosion``       a flash, an expanding fireball, then a smoke cloud
=============  ==================  ============================================================================

With ``appearance_cue`` a square of the class colour (:data:`MARKER_RGB`) is also drawn in exactly the frames
whose time ``index / fps`` lies in the span: a tiny model learns such appearance-coded events, not motion-only
ones. The square is ``marker_px`` wide and sits on a grid of ``marker_px`` cells, so when a frame's short side
is resized to four vision patches (64 px → 56 px, ``vau_r1/configs/video/tiny_cpu.yaml``) it fills one patch exactly.

A *style* (:data:`~vau_r1.bench.styles.STYLES`: ``default``, ``shifted``) sets the scene colours and the camera
layout only; events, marker colours and the marker grid are the same in every style.

Colours never collide: every marker colour has a 0 and a 255 channel, while scene colours keep every channel in
70..190 (in every style) and flames/fireballs have red 255 with green 120..245 (no marker is within 60 on all three
channels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vau_r1.bench.styles import COLOR_RGB, MUTED_RGB, STYLES

__all__ = ["MARKER_RGB", "MUTED_RGB", "SCENE_KINDS", "Scene", "event_frames", "render_scene", "sample_scene"]

#: Scene kind → canonical VAU-Bench class label (two kinds share ``Traffic_accident``).
SCENE_KINDS: dict[str, str] = {
    "normal": "Normal",
    "falling": "Object_falling",
    "collision": "Traffic_accident",
    "wrong_way": "Traffic_accident",
    "fire": "Fire",
    "explosion": "Explosion",
}
#: Anomaly class → RGB of its appearance marker (one colour per class).
MARKER_RGB: dict[str, tuple[int, int, int]] = {
    "Object_falling": (255, 0, 255),
    "Traffic_accident": (0, 255, 255),
    "Fire": (255, 0, 0),
    "Explosion": (0, 255, 0),
}
_SMOKE = (140, 140, 140)
_FIREBALL_CORE, _FIREBALL_RING = (255, 245, 200), (255, 150, 40)


@dataclass(frozen=True)
class Scene:
    """One clip's layout; :func:`render_scene` turns it into frames. Positions are pixels, speeds px/s.

    Attributes:
        kind: one of :data:`SCENE_KINDS`.
        width, height: frame size in pixels (even).
        fps: frame rate; frame ``i`` is at ``i / fps`` seconds.
        num_frames: number of frames.
        span_s: ``(start_s, end_s)`` of the event, ``None`` for ``normal``.
        seed: seeds the texture, sensor noise and flicker.
        appearance_cue: draw the class-coloured marker during the span.
        marker_px: side of the marker square.
        marker_xy: top-left ``(x, y)`` of the marker.
        flow_dir: ``+1`` when the cars drive rightwards, ``-1`` leftwards.
        box_color: name (in the style's palette, :data:`~vau_r1.bench.styles.COLOR_RGB`) of the box.
        car_colors: names of the lane-0 car, the lane-1 lead car, its follower, and the wrong-way car.
        speeds_px_s: speeds of lane 0 and lane 1.
        phases_px: start offsets of the lane-0 car and the lane-1 lead car.
        box_x: left edge of the box; hazard_x: centre column of a fire or explosion.
        lead_stop_x: where the lane-1 lead car is hit in a collision (left edge).
        wall_rgb, ground_rgb: background colours.
        style: name in :data:`~vau_r1.bench.styles.STYLES`: the asphalt/shelf colours and the layout.
    """

    kind: str
    width: int
    height: int
    fps: float
    num_frames: int
    span_s: tuple[float, float] | None
    seed: int
    appearance_cue: bool
    marker_px: int
    marker_xy: tuple[int, int]
    flow_dir: int
    box_color: str
    car_colors: tuple[str, str, str, str]
    speeds_px_s: tuple[float, float]
    phases_px: tuple[float, float]
    box_x: int
    hazard_x: int
    lead_stop_x: int
    wall_rgb: tuple[int, int, int]
    ground_rgb: tuple[int, int, int]
    style: str = "default"

    @property
    def label(self) -> str:
        """Canonical VAU-Bench class of the scene."""
        return SCENE_KINDS[self.kind]

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    @property
    def rows(self) -> dict[str, int]:
        """Vertical layout (top rows, px; the style's) and object sizes derived from the frame size."""
        return STYLES[self.style].layout(self.width, self.height)


def sample_scene(
    kind: str, *, width: int, height: int, fps: float, num_frames: int, span_s: tuple[float, float] | None,
    seed: int, appearance_cue: bool = True, marker_px: int = 16, style: str = "default",
) -> Scene:  # fmt: skip
    """Draw a layout from ``seed``; the draws do not depend on ``kind``, so kinds differ only by their event.

    Args:
        kind: one of :data:`SCENE_KINDS`.
        width, height: frame size in pixels.
        fps: frame rate; num_frames: clip length in frames.
        span_s: ``(start_s, end_s)`` for an anomaly, ``None`` for ``normal``.
        seed: seeds the layout here and the texture/noise/flicker in :func:`render_scene`.
        appearance_cue: draw the class marker during the span.
        marker_px: marker side in pixels; the marker sits on a grid of such cells.
        style: colours and layout (:data:`~vau_r1.bench.styles.STYLES`); the same seed draws the same layout,
            events and marker cell in every style, only colours and rows differ.

    Raises:
        ValueError: unknown kind or style, or a span given to a normal scene / missing for an anomaly.
    """
    if kind not in SCENE_KINDS:
        raise ValueError(f"unknown scene kind {kind!r}; expected one of {list(SCENE_KINDS)}")
    if style not in STYLES:
        raise ValueError(f"unknown scene style {style!r}; expected one of {list(STYLES)}")
    if (span_s is None) != (kind == "normal"):
        raise ValueError(f"kind {kind!r} with span_s={span_s}: a normal scene has no span, an anomaly needs one")
    rng, look = np.random.default_rng([seed, 0]), STYLES[style]
    names = list(look.palette)
    colors = [names[i] for i in rng.permutation(len(names))[:5]]
    side = min(width, height)
    cell = (int(rng.integers(width // marker_px)), int(rng.integers(height // marker_px)))
    flow_dir = 1 if rng.random() < 0.5 else -1
    lead_frac = rng.uniform(0.45, 0.75)
    return Scene(
        kind=kind, width=width, height=height, fps=fps, num_frames=num_frames, span_s=span_s, seed=seed,
        appearance_cue=appearance_cue, marker_px=marker_px, marker_xy=(cell[0] * marker_px, cell[1] * marker_px),
        flow_dir=flow_dir, box_color=colors[0], car_colors=(colors[1], colors[2], colors[3], colors[4]),
        speeds_px_s=(float(rng.uniform(0.12, 0.25) * width), float(rng.uniform(0.12, 0.25) * width)),
        phases_px=(float(rng.uniform(0, width)), float(rng.uniform(0, width))),
        box_x=int(rng.integers(round(0.1 * width), round(0.8 * width))),
        hazard_x=int(rng.integers(round(0.25 * width), round(0.75 * width))),
        lead_stop_x=round(lead_frac * width if flow_dir > 0 else (1 - lead_frac) * width - 0.17 * side),
        wall_rgb=look.walls[int(rng.integers(len(look.walls)))],
        ground_rgb=look.grounds[int(rng.integers(len(look.grounds)))], style=style,
    )  # fmt: skip


def event_frames(scene: Scene) -> np.ndarray:
    """bool [T]: frames whose time ``i / fps`` lies in ``[start_s, end_s)`` (all False without a span)."""
    if scene.span_s is None:
        return np.zeros(scene.num_frames, dtype=bool)
    t_s = np.arange(scene.num_frames) / scene.fps
    eps = 1e-9  # i / fps is inexact for some rates; grid times must land on their own frame
    return (t_s >= scene.span_s[0] - eps) & (t_s < scene.span_s[1] - eps)


def render_scene(scene: Scene) -> np.ndarray:
    """Frames of ``scene`` as uint8 RGB ``[T, H, W, 3]``; the same scene always gives the same array."""
    texture_rng, noise_rng, event_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(scene.seed).spawn(3))
    t_s = np.arange(scene.num_frames) / scene.fps
    frames = np.repeat(_background(scene, texture_rng)[None], scene.num_frames, axis=0)
    for x0, y0, w, h, rgb, visible in _moving_rects(scene, t_s, event_rng):
        _paint_rects(frames, x0, y0, w, h, rgb, visible)
    if scene.kind == "fire":
        _paint_fire(frames, scene, t_s, event_rng)
    elif scene.kind == "explosion":
        _paint_explosion(frames, scene, t_s)
    frames += noise_rng.integers(-2, 3, size=(*frames.shape[:3], 1), dtype=np.int16)
    if scene.appearance_cue and scene.span_s is not None:
        x, y, m = *scene.marker_xy, scene.marker_px
        frames[event_frames(scene), y : y + m, x : x + m] = MARKER_RGB[scene.label]
    return np.clip(frames, 0, 255).astype(np.uint8)


def _background(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """int16 [H, W, 3]: wall, shelf, ground, two asphalt lanes, and a static texture."""
    rows, width, look = scene.rows, scene.width, STYLES[scene.style]
    image = np.empty((scene.height, width, 3), dtype=np.int16)
    image[: rows["horizon"]], image[rows["horizon"] :] = scene.wall_rgb, scene.ground_rgb
    for lane in ("lane0", "lane1"):
        image[rows[lane] - 2 : rows[lane] + rows["car_h"] + 2] = look.asphalt
    shelf_x0 = max(0, scene.box_x - rows["box"])
    image[rows["shelf"] : rows["shelf"] + 2, shelf_x0 : scene.box_x + 2 * rows["box"]] = look.shelf
    return image + rng.integers(-6, 7, size=(scene.height, width, 1), dtype=np.int16)


def _wrap(x_px: np.ndarray, width: int, object_w: int) -> np.ndarray:
    """Positions that leave one edge re-enter at the other (left edges in ``[-object_w, width)``)."""
    return np.mod(x_px + object_w, width + object_w) - object_w


def _moving_rects(scene: Scene, t_s: np.ndarray, rng: np.random.Generator) -> list[tuple]:
    """``(x0[T], y0[T], w, h, rgb, visible[T] | None)`` for every car and the box, events included."""
    rows, d, (v0, v1) = scene.rows, scene.flow_dir, scene.speeds_px_s
    cw, ch, ones = rows["car_w"], rows["car_h"], np.ones_like(t_s)
    rgb = [COLOR_RGB[name] for name in scene.car_colors]
    rects = [(_wrap(scene.phases_px[0] + d * v0 * t_s, scene.width, cw), rows["lane0"] * ones, cw, ch, rgb[0], None)]
    if scene.kind == "collision":
        start_s = scene.span_s[0]
        before = np.minimum(t_s - start_s, 0.0)  # negative before the crash, 0 after: both cars stop
        shake = np.where(event_frames(scene), rng.integers(-1, 2, size=t_s.shape), 0)
        lead_x = scene.lead_stop_x + d * v1 * before + shake
        rects.append((lead_x, rows["lane1"] * ones, cw, ch, rgb[1], None))
        rects.append((scene.lead_stop_x - d * cw + d * 2.5 * v1 * before - shake, rows["lane1"] * ones + shake,
                      cw, ch, rgb[2], None))  # fmt: skip
    else:
        lead_x = scene.phases_px[1] + d * v1 * t_s
        rects.append((_wrap(lead_x, scene.width, cw), rows["lane1"] * ones, cw, ch, rgb[1], None))
        rects.append((_wrap(lead_x - d * 1.6 * cw, scene.width, cw), rows["lane1"] * ones, cw, ch, rgb[2], None))
    if scene.kind == "wrong_way":
        start_s, end_s = scene.span_s
        progress = (t_s - start_s) / (end_s - start_s)  # 0 → 1 while the car crosses the frame
        x0 = scene.width - (scene.width + cw) * progress if d > 0 else -cw + (scene.width + cw) * progress
        rects.append((x0, rows["lane0"] * ones, cw, ch, rgb[3], event_frames(scene)))
    rects.extend(_box_rects(scene, t_s))
    return rects


def _box_rects(scene: Scene, t_s: np.ndarray) -> list[tuple]:
    """The box on the shelf; for ``falling``: the drop, a squashed impact until the span ends, then lying still."""
    rows, b, ones = scene.rows, scene.rows["box"], np.ones_like(t_s)
    rgb, x0 = COLOR_RGB[scene.box_color], scene.box_x * ones
    top_y = rows["shelf"] - b
    if scene.kind != "falling":
        return [(x0, top_y * ones, b, b, rgb, None)]
    start_s, end_s = scene.span_s
    fall_s = min(1.0, (end_s - start_s) / 2)
    land_y = rows["lane0"] - 2 - b
    drop = np.clip((t_s - start_s) / fall_s, 0.0, 1.0) ** 2  # free fall: distance grows with t²
    squashed = (t_s >= start_s + fall_s) & event_frames(scene)
    upright = (top_y + (land_y - top_y) * drop, b, b, rgb, ~squashed)
    flat = (x0 - 2, (land_y + b - b // 2) * ones, b + 4, b // 2, rgb, squashed)
    return [(x0, *upright), flat]


def _paint_rects(frames: np.ndarray, x0: np.ndarray, y0: np.ndarray, w: int, h: int, rgb: tuple,
                 visible: np.ndarray | None) -> None:  # fmt: skip
    """Fill, in place, the rectangle ``[x0, x0 + w) × [y0, y0 + h)`` of every frame (where ``visible``)."""
    x0, y0 = np.rint(x0).astype(int)[:, None], np.rint(y0).astype(int)[:, None]
    xs, ys = np.arange(frames.shape[2])[None], np.arange(frames.shape[1])[None]
    in_x, in_y = (xs >= x0) & (xs < x0 + w), (ys >= y0) & (ys < y0 + h)  # [T, W], [T, H]
    if visible is not None:
        in_y &= visible[:, None]
    frames[in_y[:, :, None] & in_x[:, None, :]] = rgb


def _paint_fire(frames: np.ndarray, scene: Scene, t_s: np.ndarray, rng: np.random.Generator) -> None:
    """A half-ellipse flame on the horizon that grows for 0.75 s and flickers in height and colour each frame."""
    side, base_y = min(scene.width, scene.height), scene.rows["horizon"] + 2
    grow = np.clip((t_s - scene.span_s[0]) / 0.75, 0.35, 1.0)
    half_w = 0.13 * side * grow * rng.uniform(0.85, 1.0, size=t_s.shape)
    flame_h = 0.32 * scene.height * grow * rng.uniform(0.6, 1.0, size=t_s.shape)
    xs, ys = np.arange(scene.width)[None, None], np.arange(scene.height)[None, :, None]
    dx = (xs - scene.hazard_x) / half_w[:, None, None]
    dy = (ys - base_y) / flame_h[:, None, None]
    mask = (dx**2 + dy**2 <= 1) & (ys <= base_y) & event_frames(scene)[:, None, None]
    count = int(mask.sum())
    green, blue = rng.integers(120, 231, size=count), rng.integers(0, 61, size=count)
    frames[mask] = np.stack([np.full(count, 255), green, blue], axis=1)


def _paint_explosion(frames: np.ndarray, scene: Scene, t_s: np.ndarray) -> None:
    """A whitening flash (first 0.25 s), a fireball growing over 30% of the span, smoke in its second half."""
    start_s, end_s = scene.span_s
    active, progress = event_frames(scene), (t_s - start_s) / (end_s - start_s)
    flash = active & (t_s < start_s + 0.25)
    frames[flash] = (frames[flash] + 255) // 2
    radius = 0.24 * min(scene.width, scene.height) * np.sqrt(np.clip(progress / 0.3, 0.05, 1.0))
    xs, ys = np.arange(scene.width)[None, None], np.arange(scene.height)[None, :, None]
    dist = np.hypot(xs - scene.hazard_x, ys - (scene.rows["horizon"] - 0.1 * scene.height))  # [1, H, W]
    inside = (dist <= radius[:, None, None]) & active[:, None, None]
    fireball = (progress < 0.5)[:, None, None]
    frames[inside & ~fireball] = _SMOKE
    frames[inside & fireball] = _FIREBALL_RING
    frames[inside & fireball & (dist <= 0.5 * radius[:, None, None])] = _FIREBALL_CORE
