"""The VAU-Eval judge prompt: the paper's text verbatim (preset ``paper``) and a tidied copy (``clean``).

Source: ``evaluate_reasoning_deepseek.py`` of the official code (``docs/paper.md`` §8.5).
The official user prompt is an f-string that starts with a newline, indents every line by 8 spaces,
keeps two trailing spaces on the first four rubric lines and ends with a newline plus 8 spaces; the
``paper`` preset reproduces it byte for byte. ``clean`` is the same text dedented, without trailing
blanks; it is *not* the paper's prompt, so scores from it are not comparable to Table A.

Every preset has a :attr:`PromptPreset.version` (name + a hash of its text) that enters the cache key,
so editing a prompt can never reuse judgements made with another text.
"""

from __future__ import annotations

import hashlib
import textwrap
from dataclasses import dataclass

#: The judge's system message, verbatim.
SYSTEM_MESSAGE = "You are an expert evaluator for video anomaly detection outputs."

# One entry per line, without the 8-space indent; trailing blanks are kept on purpose.
_PAPER_BODY = (
    "Below is a ground-truth description and analysis, followed by a model-generated description and analysis. "
    "Please evaluate the model's outputs from the following aspects:",
    "",
    "1. Classification Correctness (10 pts)  ",
    "2. Key Object and Action Matching (10 pts)  ",
    "3. Fluency and Coherence (10 pts)  ",
    "4. Informativeness and Domain Awareness (10 pts)  ",
    "5. Factual Consistency (10 pts)",
    "",
    "---",
    "Ground Truth:",
    "- Description: {gt_description}",
    "- Analysis: {gt_analysis}",
    "",
    "Model Output:",
    "- Description: {description}",
    "- Analysis: {analysis}",
    "",
    "Please return a JSON object strictly formatted as:",
    "",
    "{{",
    '    "classification_score": int (0-10),',
    '    "key_matching_score": int (0-10),',
    '    "fluency_score": int (0-10),',
    '    "informativeness_score": int (0-10),',
    '    "factual_score": int (0-10),',
    '    "total_score": int (0-50),',
    '    "comments": {{',
    '        "classification": "...",',
    '        "key_matching": "...",',
    '        "fluency": "...",',
    '        "informativeness": "...",',
    '        "factual": "..."',
    "    }}",
    "}}",
)
_INDENT = " " * 8

#: ``str.format`` template of the official user prompt (``{{``/``}}`` are literal braces).
PAPER_USER_TEMPLATE = "\n" + "\n".join(_INDENT + line if line else "" for line in _PAPER_BODY) + "\n" + _INDENT


@dataclass(frozen=True)
class PromptPreset:
    """A system message and a ``str.format`` user template with the four text fields.

    Attributes:
        name: preset name (``paper`` / ``clean``).
        system: system message.
        user_template: template with ``{gt_description}``, ``{gt_analysis}``, ``{description}``, ``{analysis}``.
    """

    name: str
    system: str
    user_template: str

    @property
    def version(self) -> str:
        """``<name>-<12 hex of sha256(system, template)>``; part of every cache key."""
        digest = hashlib.sha256(f"{self.system}\x00{self.user_template}".encode()).hexdigest()
        return f"{self.name}-{digest[:12]}"


def _clean_template(template: str) -> str:
    lines = textwrap.dedent(template).strip("\n").splitlines()
    return "\n".join(line.rstrip() for line in lines)


PRESETS: dict[str, PromptPreset] = {
    "paper": PromptPreset("paper", SYSTEM_MESSAGE, PAPER_USER_TEMPLATE),
    "clean": PromptPreset("clean", SYSTEM_MESSAGE, _clean_template(PAPER_USER_TEMPLATE)),
}


def get_preset(name: str) -> PromptPreset:
    """Return the preset called ``name``; the error lists the valid names."""
    if name not in PRESETS:
        raise ValueError(f"Unknown judge prompt preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name]


def build_messages(
    gt_description: str, gt_analysis: str, description: str, analysis: str, preset: str = "paper"
) -> list[dict[str, str]]:
    """Chat messages (system + user) asking the judge to score one prediction against its ground truth.

    The texts are inserted as they are (``str.format`` never re-reads inserted text, so braces in a
    description are harmless).

    Example:
        >>> msgs = build_messages("GT d {x}", "GT a", "pred d", "pred a")
        >>> [m["role"] for m in msgs], "- Description: GT d {x}" in msgs[1]["content"]
        (['system', 'user'], True)
    """
    spec = get_preset(preset)
    user = spec.user_template.format(
        gt_description=gt_description, gt_analysis=gt_analysis, description=description, analysis=analysis
    )
    return [{"role": "system", "content": spec.system}, {"role": "user", "content": user}]
