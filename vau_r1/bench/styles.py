"""Scene styles: the colours and camera layout that a benchmark's clips are drawn with.

A style changes only how the yard looks, never what happens in it: the scene kinds, their events and timing, the
anomaly classes, the marker colours (:data:`~vau_r1.bench.scenes.MARKER_RGB`) and the marker grid are the same in
every style, and so is the text and CSV schema. A model trained on one style can thus be evaluated on another as an
out-of-distribution test:

===========  =======================================================================================================
style        look
===========  =======================================================================================================
``default``  light grey walls, dark ground and asphalt, muted cars (:data:`MUTED_RGB`); lanes at 56% and 78% height
``shifted``  blue, brick or green walls, sand, clay or concrete ground, purple-grey asphalt, other cars
             (:data:`SHIFTED_RGB`); a lower camera: taller wall, shelf lower, lanes lower (66% and 85% height)
===========  =======================================================================================================

The marker grid stays: every ``marker_px`` cell is already used, and only those cells fill one vision patch after
resizing. A style sets no durations; pass another ``duration_s`` for a duration shift as well.

Every scene colour of every style keeps each channel within 70..190, so no scene pixel comes within 60 of a
marker colour on all three channels (each marker has a 0 and a 255 channel).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COLOR_RGB", "MUTED_RGB", "SHIFTED_RGB", "STYLES", "SceneStyle"]

RGB = tuple[int, int, int]

#: Named muted colours of cars and boxes in the ``default`` style (every channel in 80..185).
MUTED_RGB: dict[str, RGB] = {
    "grey": (128, 128, 128), "brown": (150, 105, 80), "olive": (130, 130, 85), "slate": (95, 115, 145),
    "tan": (185, 160, 120), "maroon": (145, 85, 90), "teal": (85, 135, 130), "plum": (130, 100, 140),
}  # fmt: skip
#: Named colours of cars and boxes in the ``shifted`` style (every channel in 70..190; no name shared).
SHIFTED_RGB: dict[str, RGB] = {
    "navy": (75, 85, 140), "ochre": (180, 140, 75), "rust": (185, 90, 70), "forest": (80, 125, 90),
    "lilac": (165, 140, 185), "lime": (150, 180, 80), "charcoal": (80, 80, 84), "sky": (120, 160, 185),
}  # fmt: skip
#: Every named car/box colour of every style.
COLOR_RGB: dict[str, RGB] = {**MUTED_RGB, **SHIFTED_RGB}


@dataclass(frozen=True)
class SceneStyle:
    """Colours and layout of one style.

    Attributes:
        walls, grounds: background colours, one of each drawn per clip.
        asphalt, shelf: colours of the two lanes and of the shelf.
        palette: named colours of the box and the cars, five of them drawn per clip.
        rows: top rows of the shelf, the horizon, lane 0 and lane 1, as fractions of the frame height.
    """

    walls: tuple[RGB, ...]
    grounds: tuple[RGB, ...]
    asphalt: RGB
    shelf: RGB
    palette: dict[str, RGB]
    rows: tuple[float, float, float, float]

    def layout(self, width: int, height: int) -> dict[str, int]:
        """Top rows (px) of the shelf, horizon and lanes, and the car and box sizes, for a frame size."""
        side, (shelf, horizon, lane0, lane1) = min(width, height), self.rows
        return {"shelf": round(shelf * height), "horizon": round(horizon * height), "lane0": round(lane0 * height),
                "lane1": round(lane1 * height), "car_w": round(0.17 * side), "car_h": max(3, round(0.09 * side)),
                "box": max(4, round(0.11 * side))}  # fmt: skip


#: Style name → its colours and layout; ``default`` is what every benchmark used before styles existed.
STYLES: dict[str, SceneStyle] = {
    "default": SceneStyle(
        walls=((150, 155, 165), (165, 150, 135), (140, 150, 140)),
        grounds=((110, 105, 95), (120, 115, 100), (100, 100, 108)),
        asphalt=(88, 88, 94), shelf=(100, 80, 70), palette=MUTED_RGB, rows=(0.26, 0.44, 0.56, 0.78),
    ),
    "shifted": SceneStyle(
        walls=((90, 110, 165), (170, 105, 90), (100, 150, 95)),
        grounds=((188, 176, 120), (185, 150, 110), (175, 175, 180)),
        asphalt=(125, 110, 140), shelf=(75, 70, 120), palette=SHIFTED_RGB, rows=(0.36, 0.54, 0.66, 0.85),
    ),
}  # fmt: skip
