"""Typed records for VAU-Bench rows, the task names and the anomaly class labels.

Every other module reads annotations through :class:`VideoSample`; the CSV column names and
sentinel values are known only to :mod:`vau_r1.data.annotations`.

Conventions (``docs/paper.md`` §2.2):

* times are seconds everywhere (``start_s``, ``end_s``);
* ``NORMAL_SPAN`` ``(-1.0, -1.0)`` is the grounding target of a normal video, the answer the
  TAG prompt asks for when there is no anomaly;
* ``None`` always means "not annotated": such a record is unusable for the tasks that need
  that field and usable for the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

#: The four task names used across the library.
TASKS: tuple[str, ...] = ("qa", "tag", "cls", "reasoning")
Task = Literal["qa", "tag", "cls", "reasoning"]

#: Source datasets of VAU-Bench and the file-name prefixes of the train/val CSVs.
SOURCES: tuple[str, ...] = ("msad", "ucf", "ecva")
Source = Literal["msad", "ucf", "ecva"]

#: Option letters of the multiple-choice questions, in option order.
OPTION_LETTERS: tuple[str, ...] = ("A", "B", "C", "D")

#: The 20 class labels, spelled exactly as in the paper's code and the CSVs.
CLASS_LABELS: tuple[str, ...] = (
    "Abuse", "Agriculture", "Arrest", "Arson", "Assault", "Explosion", "Fighting", "Fire",
    "Food Safety", "Medical Abnormality", "Natural Hazard", "Normal", "Object_falling",
    "People_falling", "Robbery", "Shooting", "Stealing", "Traffic_accident", "Vandalism",
    "Water_incident",
)  # fmt: skip
NORMAL_LABEL = "Normal"

#: Grounding target of a normal video (the paper's prompt convention).
NORMAL_SPAN: tuple[float, float] = (-1.0, -1.0)

_SEPARATORS = re.compile(r"[\s_]+")


def label_key(label: str) -> str:
    """Normalise a label for comparison: lower case, runs of spaces/underscores become one ``_``.

    >>> label_key("Traffic accident") == label_key("traffic_Accident") == "traffic_accident"
    True
    """
    return _SEPARATORS.sub("_", label.strip()).lower()


_CANONICAL = {label_key(label): label for label in CLASS_LABELS}


def canonical_label(label: str) -> str | None:
    """Map any spelling of a class label to its canonical form, or ``None`` if it is not one.

    >>> canonical_label("food_safety"), canonical_label("People falling"), canonical_label("cat")
    ('Food Safety', 'People_falling', None)
    """
    return _CANONICAL.get(label_key(label))


@dataclass(frozen=True)
class VideoSample:
    """One VAU-Bench row, typed. ``None`` marks a field that the row does not annotate.

    Attributes:
        video: file name as written in the CSV (``msad_Assault_3.mp4``, ``Assault_2.mp4``).
        source: dataset the video comes from (``msad`` / ``ucf`` / ``ecva``), or ``None``.
        row: 1-based data-row number in the source file (the header is row 0), for messages.
        question: multiple-choice question text.
        options: the four option texts, without letter prefixes.
        answer: correct option letter ``A``–``D``.
        anomaly_class: canonical class label (one of :data:`CLASS_LABELS`).
        is_normal: ``True`` for a normal video, ``False`` for an anomalous one, ``None`` if unknown.
        span_s: annotated ``(start_s, end_s)`` when it is a valid interval (``0 <= start < end``),
            else ``None`` (normal ``0,0`` rows and unknown ``-1,-1`` spans).
        key_object: short phrase naming the key object.
        description: free-text scene description (VAU-Eval "Description" ground truth).
        reasoning: structured rationale (VAU-Eval "Analysis" ground truth).
    """

    video: str
    source: Source | None
    row: int
    question: str | None = None
    options: tuple[str, str, str, str] | None = None
    answer: str | None = None
    anomaly_class: str | None = None
    is_normal: bool | None = None
    span_s: tuple[float, float] | None = None
    key_object: str | None = None
    description: str | None = None
    reasoning: str | None = None

    @property
    def video_id(self) -> str:
        """File name without the ``msad_`` / ``ucf_`` / ``ecva_`` prefix (test-file naming)."""
        for source in SOURCES:
            if self.video.startswith(f"{source}_"):
                return self.video[len(source) + 1 :]
        return self.video

    @property
    def tag_target(self) -> tuple[float, float] | None:
        """Grounding target for training: the span, :data:`NORMAL_SPAN` for a normal video.

        ``None`` when the row has no usable target (an anomaly whose span is unknown).
        A row of class ``Normal`` targets :data:`NORMAL_SPAN` even when the CSV gives it an
        interval (two ECVA rows do), because the prompt defines ``Normal`` that way.
        """
        if self.is_normal:
            return NORMAL_SPAN
        return self.span_s
