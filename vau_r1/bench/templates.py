"""Templated text of a synthetic clip: question, options, key object, description and reasoning.

The reasoning follows the VAU-Bench form ``### Specific Anomaly Type: … ### Location: … ### Key Evidence: …
### Detailed Explanation: … ### Cause and Effect: … ### Conclusion: …``. Option texts name no colour or time,
so they are true of the clip they describe and their wording never tells the correct option from a distractor:
only the event named differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vau_r1.bench.scenes import SCENE_KINDS, Scene

__all__ = [
    "EXTRA_DISTRACTORS", "OPTIONS", "QUESTIONS", "ClipText", "clip_text", "distractor_texts", "format_s",
    "option_text", "reasoning_text",
]  # fmt: skip

#: Question variants; every one reads well for normal clips too.
QUESTIONS: tuple[str, ...] = (
    "What anomaly occurs in the video?",
    "Which option best describes what happens in the video?",
    "What unusual event, if any, takes place in this video?",
    "Which statement correctly describes the event in the video?",
)
#: Option phrasings per kind.
OPTIONS: dict[str, tuple[str, ...]] = {
    "normal": ("No anomaly: the cars keep to their lanes and nothing unusual happens",
               "Normal activity: traffic flows steadily and the scene stays unchanged"),
    "falling": ("A box falls off the shelf and crashes onto the ground",
                "The box on the shelf suddenly drops to the floor"),
    "collision": ("A car rear-ends the car ahead of it and both stop",
                  "Two cars in the same lane collide when the rear one drives into the front one"),
    "wrong_way": ("A car drives the wrong way, against the flow of traffic",
                  "One car crosses the scene in the opposite direction to all other cars"),
    "fire": ("Flickering flames break out in front of the wall and burn for a while",
             "A fire starts near the wall, flickers orange and yellow, then goes out"),
    "explosion": ("A bright flash and an expanding fireball erupt, leaving a cloud of smoke",
                  "An explosion bursts in front of the wall and turns into smoke"),
}  # fmt: skip
#: Distractors naming classes that the benchmark never renders, used when too few rendered classes exist.
EXTRA_DISTRACTORS: tuple[str, ...] = (
    "A person slips on the road and falls to the ground",
    "Water floods across the ground and covers the lanes",
    "Someone smashes the shelf and breaks it apart",
)
_PLACES = ("a loading yard", "a two-lane service road", "a warehouse courtyard", "a street beside a building")
_MARKER_NAMES = {"Object_falling": "magenta", "Traffic_accident": "cyan", "Fire": "red", "Explosion": "green"}
# Per kind: key object, event sentence, key evidence, detailed explanation, cause and effect.
_EVENTS: dict[str, tuple[str, str, str, str, str]] = {
    "falling": ("the {box} box on the shelf",
                "the {box} box tips off the shelf, falls to the ground and lands with a squashed impact",
                "the {box} box leaves the shelf, accelerates downwards and hits the ground",
                "Objects stored on a shelf should stay in place; a box that drops to the ground is an unexpected "
                "object fall that can damage goods or hurt people below.",
                "The box loses its support on the shelf; gravity pulls it down and it crashes onto the ground."),
    "collision": ("the {lead} car and the {follow} car in the far lane",
                  "the {follow} car drives into the back of the {lead} car; both cars stop and shake",
                  "the {follow} car closes in on the {lead} car much faster than the traffic, they touch and stop",
                  "Cars in one lane normally keep their distance and speed; a rear car hitting the car ahead is a "
                  "traffic accident.",
                  "The rear car drives too fast to keep its distance and hits the front car, which stops both cars."),
    "wrong_way": ("the {wrong} car in the near lane",
                  "a {wrong} car enters the near lane and drives against the traffic flow across the whole frame",
                  "every car moves {flow} except the {wrong} car, which moves the opposite way",
                  "All cars follow one direction of travel; a car driving against it is a dangerous traffic "
                  "violation that can cause a head-on crash.",
                  "The car enters the road in the wrong direction, creating a risk of collision with oncoming cars."),
    "fire": ("the flames in front of the wall",
             "flickering orange and yellow flames appear in front of the wall, grow and then die out",
             "a bright, flickering, flame-shaped region that changes every frame",
             "Nothing in the scene should burn; flickering flames in front of the wall are an outbreak of fire.",
             "Something ignites in front of the wall; the flames grow, flicker and threaten the nearby objects."),
    "explosion": ("the fireball in front of the wall",
                  "a sudden flash lights the whole frame and a fireball expands and turns into smoke",
                  "a frame-wide flash followed by a rapidly expanding bright disc and a grey smoke cloud",
                  "A sudden flash with an expanding fireball is the signature of an explosion, a violent and "
                  "dangerous event.",
                  "Something detonates in front of the wall; the blast flashes, expands and leaves smoke behind."),
}  # fmt: skip


@dataclass(frozen=True)
class ClipText:
    """All text fields of one clip except the option list."""

    question: str
    answer: str
    key_object: str
    description: str
    reasoning: str


def format_s(seconds: float) -> str:
    """A time as the CSVs write it: at least one decimal, no float noise.

    >>> format_s(4), format_s(2.5), format_s(0.25), format_s(1 / 3)
    ('4.0', '2.5', '0.25', '0.333')
    """
    text = f"{round(float(seconds), 3):.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def option_text(kind: str, rng: np.random.Generator) -> str:
    """One phrasing, drawn with ``rng``, of the option naming ``kind``'s event."""
    return OPTIONS[kind][int(rng.integers(len(OPTIONS[kind])))]


def _names(scene: Scene) -> dict[str, str]:
    lead, follow = scene.car_colors[1:3]
    return {"box": scene.box_color, "lead": lead, "follow": follow, "wrong": scene.car_colors[3],
            "flow": "left to right" if scene.flow_dir > 0 else "right to left"}  # fmt: skip


def _region(scene: Scene) -> str:
    """Where the marker sits, e.g. ``top-left`` or ``centre``."""
    x, y = (scene.marker_xy[i] + scene.marker_px / 2 for i in (0, 1))
    col = ("left", "", "right")[min(2, int(3 * x / scene.width))]
    row = ("top", "", "bottom")[min(2, int(3 * y / scene.height))]
    return "-".join(part for part in (row, col) if part) or "centre"


def _description(scene: Scene, place: str) -> str:
    names = _names(scene)
    setting = (f"A fixed camera watches {place}: a {names['box']} box rests on a shelf on the wall, and cars "
               f"drive from {names['flow']} in two lanes.")  # fmt: skip
    if scene.span_s is None:
        return setting + " Throughout the clip nothing unusual happens: the cars keep their lanes and speed."
    start, end = (format_s(s) for s in scene.span_s)
    event = _EVENTS[scene.kind][1].format(**names)
    text = f"{setting} From {start} s to {end} s {event}."
    if scene.appearance_cue:
        marker = _MARKER_NAMES[scene.label]
        text += f" While the event lasts, a large {marker} square appears at the {_region(scene)} of the frame."
    return text


def reasoning_text(scene: Scene, place: str) -> str:
    """The six-header reasoning of ``scene``, in the VAU-Bench form."""
    names, label = _names(scene), scene.label
    if scene.span_s is None:
        evidence = f"The cars move steadily from {names['flow']} and the {names['box']} box stays on the shelf."
        explanation = ("Every object behaves as expected: no object falls, no cars touch, no car drives the wrong "
                       "way and nothing burns or explodes.")  # fmt: skip
        cause = "There is no triggering event, so the scene stays unchanged."
        conclusion = "Normal. The video shows routine activity with no anomaly."
    else:
        _, _, evidence, explanation, cause = (text.format(**names) for text in _EVENTS[scene.kind])
        start, end = (format_s(s) for s in scene.span_s)
        if scene.appearance_cue:
            evidence += f"; a {_MARKER_NAMES[label]} square marks the event while it lasts"
        evidence = evidence[0].upper() + evidence[1:] + "."
        conclusion = f"{label}. The anomaly occurs from {start} s to {end} s."
    parts = (label, place[0].upper() + place[1:], evidence, explanation, cause, conclusion)
    heads = ("Specific Anomaly Type", "Location", "Key Evidence", "Detailed Explanation", "Cause and Effect",
             "Conclusion")  # fmt: skip
    return " ".join(f"### {head}: {part}" for head, part in zip(heads, parts, strict=True))


def clip_text(scene: Scene, rng: np.random.Generator) -> ClipText:
    """Question, correct option, key object, description and reasoning of ``scene``."""
    question = QUESTIONS[int(rng.integers(len(QUESTIONS)))]
    answer = option_text(scene.kind, rng)
    place = _PLACES[int(rng.integers(len(_PLACES)))]
    key_object = "the cars in both lanes" if scene.span_s is None else _EVENTS[scene.kind][0].format(**_names(scene))
    return ClipText(question, answer, key_object, _description(scene, place), reasoning_text(scene, place))


def distractor_texts(kind: str, kinds: Sequence[str], rng: np.random.Generator) -> list[str]:
    """Three wrong options for a clip of ``kind``, in random order: one per other class among ``kinds``.

    An anomalous clip always gets the ``normal`` option; a class gets one option even when it has several kinds,
    and :data:`EXTRA_DISTRACTORS` fill up when fewer than three classes are left. The list is shuffled with
    ``rng`` last, so no kind of option has a favoured place: wherever the correct option is then inserted, option
    positions tell nothing about the clip's class.
    """
    by_class: dict[str, list[str]] = {}
    for other in kinds:
        by_class.setdefault(SCENE_KINDS[other], []).append(other)
    by_class.pop(SCENE_KINDS[kind], None)
    chosen = [] if kind == "normal" else ["normal"]
    by_class.pop("Normal", None)
    classes = sorted(by_class)
    for index in rng.permutation(len(classes)):
        kinds_of = by_class[classes[index]]
        chosen.append(kinds_of[int(rng.integers(len(kinds_of)))])
    texts = [option_text(other, rng) for other in chosen[:3]]
    extras = [EXTRA_DISTRACTORS[i] for i in rng.permutation(len(EXTRA_DISTRACTORS))]
    texts += extras[: 3 - len(texts)]
    return [texts[i] for i in rng.permutation(len(texts))]
