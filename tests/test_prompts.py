"""Golden prompt strings for every task and preset (paper texts verbatim, trailing spaces included).

Each golden string is written one prompt line per source line; a trailing space is written inside the
quotes (``"... </answer>. "``), so it survives editors. The paper texts are those of
``docs/paper.md`` §4 (``⎵`` = trailing space) and of the official eval scripts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vau_r1.data.schema import CLASS_LABELS, TASKS, VideoSample
from vau_r1.tasks import PRESET_NAMES, PROMPT_PRESETS, get_preset, render_prompt
from vau_r1.tasks import prompts as P
from vau_r1.tasks.presets import duration_sentence

PAPER_DOC = Path(__file__).resolve().parents[1] / "docs" / "paper.md"

SAMPLE = VideoSample(
    video="msad_Assault_3.mp4", source="msad", row=1,
    question="What is the primary evidence of an anomaly in the video?",
    options=("Physical altercation", "A fire", "A car accident", "People walking"),
    answer="A", anomaly_class="Assault", is_normal=False, span_s=(1.26, 3.44),
    description="A man runs.", reasoning="He hits someone.",
)  # fmt: skip
Q = (
    'Answer the question: "What is the primary evidence of an anomaly in the video?" '
    "according to the content of the video."
)
TAG_Q_THINK = (
    "Is there any anomaly in the video? If yes, please answer 'Anomaly' and present the precise anomaly time period. "
    "If no, please answer 'Normal' and output time period as <glue>[-1.0, -1.0]</glue>."
)
TAG_Q = (
    "Is there any anomaly in the video? If yes, output time period as <glue>[start_time, end_time]</glue>, replace "
    "start_time and end_time with the actual time period in seconds. If no anomaly, output <glue>[-1.0, -1.0]</glue>."
)
TAG_GLUE_TAIL = (
    "present the precise time period in seconds of the video clips on which you base your "
    "answer to this question in the format of [s1, e1]. \n"  # trailing space kept
)
CLS_HEAD = (
    'Answer the question: "What type of anomaly appears in the video? '
    "If no anomaly appears, please answer 'Normal'.\" according to the content of the video. "
)
CLS_LIST = str(list(CLASS_LABELS))
QA_EVAL_HEAD = (
    "\n"  # the f-string opens with a line break
    "            You are a helpful AI assistant performing video anomaly detection reasoning. \n"
    "            Below is a video description and a reasoning process. Based on this, answer the following "
    "multiple-choice question correctly.\n"
    "\n"
    "            ### Question:\n"
    "            What is the primary evidence of an anomaly in the video?\n"
    "\n"
    "            ### Options:\n"
    '            "A. "Physical altercation\n'  # literal quotes around the prefix, as in the f-string
    '            "B. "A fire\n'
    '            "C. "A car accident\n'
    '            "D. "People walking\n'
    "\n"
)
REASONING_TURN1 = (
    "You are an advanced anomaly detector assigned to analyze a video. Please identify any unusual or suspicious "
    "events that occur in the scene. Do not focus on any text or watermarks that might appear. "
)

GOLDEN: dict[tuple[str, str], str] = {
    # QA GRPO: [OPTION] = str(list) of "A. text"; ends with ". " (trailing space).
    ("qa", "paper_grpo"): (
        f"{Q} Select the answer from :"
        "['A. Physical altercation', 'B. A fire', 'C. A car accident', 'D. People walking'].\n"
        "\n"
        "Output your thought process within the <think> </think> tags, including analysis with either specific time "
        "ranges (xx.xx to xx.xx).\n"
        "\n"
        "Then, provide your answer within the <answer> </answer> tags, "
        "output the corresponding letter of the option.\n"
        "\n"
        "For example: <think> your detailed reasoning process here </think><answer> your final answer here </answer>. "
    ),
    # QA SFT: options joined by one space, no space after "format is:", trailing space.
    ("qa", "paper_sft"): (
        f"{Q} Select the answer from :A. Physical altercation B. A fire C. A car accident D. People walking. "
        "The expected format is:<answer> Output the corresponding letter of the option. (A, B, C, or D) </answer>. "
    ),
    # QA eval with think: 12-space indentation, trailing spaces, and "\n" + 12 spaces at the end.
    ("qa", "paper_eval_think"): QA_EVAL_HEAD + (
        "            When the user asks a question, you should first carefully reason through the problem internally, "
        "and then present the final option.\n"
        "            The expected format is: <think> your detailed reasoning process here </think><answer> "
        "Please only output one option letter! (A, B, C, or D) </answer>. \n"
        "            "
    ),
    # QA eval without think: same head, one closing instruction line.
    ("qa", "paper_eval_no_think"): QA_EVAL_HEAD + (
        "            Please only output one option letter (A, B, C, or D). Please do not output other words.\n"
        "            "
    ),
    # TAG GRPO: fixed question, str(['Normal', 'Anomaly']), "letter of the option" (sic), ends ". \n".
    ("tag", "paper_grpo"): (
        f'Answer the question: "{TAG_Q_THINK}" according to the content of the video. '
        "Select the answer from :['Normal', 'Anomaly'].\n"
        "\n"
        "Output your thought process within the <think> </think> tags with detailed analysis.\n"
        "\n"
        "Then, provide your answer within the <answer> </answer> tags, output the corresponding letter of the option. "
        f"At the same time, in the <glue> </glue> tags, {TAG_GLUE_TAIL}"
        "\n"
        "For example: <think> your detailed reasoning process here </think><answer> your final answer here </answer>"
        "<glue>[5.2, 10.4]</glue>. \n"
    ),
    # TAG SFT = TAG no-think eval: glue only; trailing space on the glue line; final line break.
    ("tag", "paper_sft"): (
        f'Answer the question: "{TAG_Q}" according to the content of the video.\n'
        "\n"
        f"Provide your answer within the <glue> </glue> tags, {TAG_GLUE_TAIL}"
        "\n"
        "For example: <glue>[5.2, 10.4]</glue>.\n"
    ),
    # TAG think eval: literal "[Anomaly, Normal]" options, "corresponding option", no space after the last period.
    ("tag", "paper_eval_think"): (
        f'Answer the question: "{TAG_Q_THINK}" according to the content of the video. '
        "Select the answer from :[Anomaly, Normal].\n"
        "\n"
        "Output your thought process within the <think> </think> tags with detailed analysis.\n"
        "\n"
        "Then, provide your answer within the <answer> </answer> tags, output the corresponding option. "
        f"At the same time, in the <glue> </glue> tags, {TAG_GLUE_TAIL}"
        "\n"
        "For example: <think> your detailed reasoning process here </think><answer> your final answer here </answer>"
        "<glue>[5.2, 10.4]</glue>.\n"
    ),
    # CLS GRPO: the literal FIXED_OPTION list, "letter of the option" (sic), ends ". ".
    ("cls", "paper_grpo"): (
        f"{CLS_HEAD}Select the answer from :{CLS_LIST}.\n"
        "\n"
        "Output your thought process within the <think> </think> tags.\n"
        "\n"
        "Then, provide your answer within the <answer> </answer> tags, "
        "output the corresponding letter of the option.\n"
        "\n"
        "For example: <think> your reasoning process here </think><answer> your final answer here </answer>. "
    ),
    # CLS SFT: one line, trailing space after </answer>.
    ("cls", "paper_sft"): (
        f"{CLS_HEAD}Select the answer from :{CLS_LIST}. The expected format is: <answer> Output the corresponding "
        "option here </answer> "
    ),
    # CLS SFT CoT (initial commit): the reasoning sentence before "The expected format is:".
    ("cls", "paper_sft_think"): (
        f"{CLS_HEAD}Select the answer from :{CLS_LIST}. When the user asks a question, you should first carefully "
        "reason through the problem internally, and then present the final option. The expected format is: <answer> "
        "Output the corresponding option here </answer> "
    ),
    # CLS eval with think: "Select one of the answer from", <think> in the format, trailing space.
    ("cls", "paper_eval_think"): (
        f"{CLS_HEAD}Select one of the answer from :{CLS_LIST}. When the user asks a question, you should first "
        "carefully reason through the problem internally, and then present the final option. The expected format is: "
        "<think> Your detailed reasoning process here </think><answer> Output the corresponding option here </answer> "
    ),
    # CLS eval without think.
    ("cls", "paper_eval_no_think"): (
        f"{CLS_HEAD}Select one of the answer from :{CLS_LIST}. The expected format is: <answer> Output the "
        "corresponding option here </answer> "
    ),
    # Reasoning SFT (description baseline).
    ("reasoning", "paper_sft"): REASONING_TURN1 + "Please provide a description for the video.",
    # Reasoning eval, turn 1 (turn 2 is tested in test_tasks.py).
    ("reasoning", "paper_eval_think"): REASONING_TURN1 + "Provide a description in five sentences.",
    # Default QA: one option per line, asks for the letter.
    ("qa", "default"): (
        'Answer the question: "What is the primary evidence of an anomaly in the video?" according to the content of '
        "the video. Select the answer from the options below.\n"
        "A. Physical altercation\nB. A fire\nC. A car accident\nD. People walking\n"
        "\n"
        "Output your thought process within the <think> </think> tags, including analysis with specific time ranges "
        "in seconds where they help.\n"
        "\n"
        "Then, provide your answer within the <answer> </answer> tags: output only the letter of the correct option "
        "(A, B, C or D).\n"
        "\n"
        "For example: <think> your detailed reasoning process here </think><answer> the letter of the correct option "
        "</answer>"
    ),
    # Default TAG without think and without a duration: Normal/Anomaly plus the glue span.
    ("tag", "default_no_think"): (
        "Is there any anomaly in the video? If yes, answer Anomaly and give the precise time period of the anomaly in "
        "seconds. If no, answer Normal and give the time period [-1.0, -1.0].\n"
        "\n"
        "Provide your answer within the <answer> </answer> tags: output exactly one word, Normal or Anomaly. Right "
        "after it, in the <glue> </glue> tags, give the time period in seconds in the format [start, end].\n"
        "\n"
        "For example: <answer>Anomaly</answer><glue>[5.2, 10.4]</glue> or <answer>Normal</answer>"
        "<glue>[-1.0, -1.0]</glue>"
    ),
    # Default CLS without think: asks for the class label, labels comma-separated.
    ("cls", "default_no_think"): (
        "What type of anomaly appears in the video? If no anomaly appears, answer Normal. "
        f"Select the answer from these class labels: {', '.join(CLASS_LABELS)}.\n"
        "\n"
        "Provide your answer within the <answer> </answer> tags: output exactly one class label from the list, "
        "spelled as in the list, with no other words.\n"
        "\n"
        "For example: <answer> the class label </answer>"
    ),
}
# Presets whose prompt equals another preset's (the paper reused the text).
SAME_AS = {
    ("qa", "paper_sft_think"): ("qa", "paper_sft"),  # only the target gained <think>
    ("tag", "paper_sft_think"): ("tag", "paper_sft"),  # only the target changed [inferred]
    ("tag", "paper_eval_no_think"): ("tag", "paper_sft"),  # sft_grounding.py and inference_tag_qwen.py share it
    ("reasoning", "paper_eval_no_think"): ("reasoning", "paper_eval_think"),
    ("reasoning", "default"): ("reasoning", "paper_eval_think"),
    ("reasoning", "default_no_think"): ("reasoning", "paper_eval_think"),
}
ALL_PRESETS = [(task, name) for task in TASKS for name in PROMPT_PRESETS[task]]


@pytest.mark.parametrize(("task", "name"), sorted(GOLDEN))
def test_golden_prompt(task: str, name: str) -> None:
    assert render_prompt(get_preset(task, name), SAMPLE) == GOLDEN[task, name]


@pytest.mark.parametrize(("task", "name"), sorted(SAME_AS))
def test_shared_prompt_texts(task: str, name: str) -> None:
    other = SAME_AS[task, name]
    assert render_prompt(get_preset(task, name), SAMPLE) == GOLDEN[other]


def test_every_preset_has_a_golden_or_a_derived_check() -> None:
    covered = set(GOLDEN) | set(SAME_AS) | {("qa", "default_no_think"), ("tag", "default"), ("cls", "default")}
    assert set(ALL_PRESETS) == covered
    # reasoning has no GRPO trainer and no CoT SFT variant in the paper
    assert set(PROMPT_PRESETS["reasoning"]) == set(PRESET_NAMES) - {"paper_grpo", "paper_sft_think"}


def test_default_variants_differ_only_in_the_think_instructions() -> None:
    # default_no_think = default without the <think> paragraph, and with a think-free example
    qa_think = render_prompt(get_preset("qa", "default"), SAMPLE)
    qa_plain = render_prompt(get_preset("qa", "default_no_think"), SAMPLE)
    assert "<think>" in qa_think and "<think>" not in qa_plain
    assert qa_plain.startswith(qa_think.split("\n\nOutput your thought")[0])
    tag_think = render_prompt(get_preset("tag", "default"), SAMPLE)
    assert tag_think.endswith(
        "For example: <think> your detailed reasoning process here </think><answer>Anomaly</answer>"
        "<glue>[5.2, 10.4]</glue> or <think> your detailed reasoning process here </think><answer>Normal</answer>"
        "<glue>[-1.0, -1.0]</glue>"
    )
    cls_think = render_prompt(get_preset("cls", "default"), SAMPLE)
    assert "output exactly one class label" in cls_think and "letter" not in cls_think


@pytest.mark.parametrize("name", ["default", "default_no_think"])
def test_default_tag_prompt_states_the_duration(name: str) -> None:
    with_duration = render_prompt(get_preset("tag", name), SAMPLE, duration_s=12.34)
    without = render_prompt(get_preset("tag", name), SAMPLE)
    assert with_duration == "The video lasts 12.3 seconds. " + without
    assert without.startswith("Is there any anomaly in the video?")


def test_duration_is_ignored_by_templates_without_a_slot() -> None:
    preset = get_preset("tag", "paper_grpo")
    assert render_prompt(preset, SAMPLE, duration_s=30.0) == render_prompt(preset, SAMPLE)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_duration_must_be_positive_and_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="duration_s"):
        duration_sentence(bad)


def test_option_list_uses_python_str_quoting() -> None:
    # str(list) switches to double quotes for a text with an apostrophe, exactly as the paper's code did
    sample = VideoSample(video="v.mp4", source=None, row=2, question="Q?", options=("man's car", "b", "c", "d"))
    text = render_prompt(get_preset("qa", "paper_grpo"), sample)
    assert "from :[\"A. man's car\", 'B. b', 'C. c', 'D. d']." in text


def test_placeholders_are_filled_in_one_pass() -> None:
    # a question that contains a placeholder name is inserted as is, never re-expanded
    question = "Is [OPTION] [DURATION] here?"
    sample = VideoSample(video="v.mp4", source=None, row=2, question=question, options=("a", "b", "c", "d"))
    text = render_prompt(get_preset("qa", "default"), sample, duration_s=5.0)
    assert '"Is [OPTION] [DURATION] here?"' in text


@pytest.mark.parametrize(("task", "name"), ALL_PRESETS)
def test_no_placeholder_left_after_rendering(task: str, name: str) -> None:
    text = render_prompt(get_preset(task, name), SAMPLE, duration_s=3.0)
    assert re.search(r"\[(QUESTION|OPTIONS?|OPTION_[A-D]|DURATION)\]", text) is None


def test_cls_fixed_option_is_the_class_list() -> None:
    # the literal FIXED_OPTION of the paper's code is str() of the 20 labels in schema order
    assert str(list(CLASS_LABELS)) == P.CLS_FIXED_OPTION


def test_qa_prompt_needs_question_and_options() -> None:
    sample = VideoSample(video="msad_Fire_1.mp4", source="msad", row=7)
    with pytest.raises(ValueError, match=r"msad_Fire_1\.mp4 \(row 7\): task 'qa' needs a question"):
        render_prompt(get_preset("qa", "default"), sample)
    # tag, cls and reasoning prompts do not read the sample's text fields
    assert render_prompt(get_preset("cls", "default"), sample).startswith("What type of anomaly")


def test_unknown_preset_and_task_list_the_valid_names() -> None:
    with pytest.raises(ValueError, match=r"Unknown prompt preset 'paper' for task 'qa'; expected one of \['paper_gr"):
        get_preset("qa", "paper")
    with pytest.raises(ValueError, match=r"expected one of \['paper_sft', 'paper_eval_think'"):
        get_preset("reasoning", "paper_grpo")  # no RFT trainer exists for reasoning
    with pytest.raises(ValueError, match=r"Unknown task 'grounding'; expected one of \['qa', 'tag', 'cls', 'reason"):
        get_preset("grounding", "default")


def _paper_section4() -> str:
    """§4 of docs/paper.md (part of the repository), with ``⎵`` turned back into a space."""
    text = PAPER_DOC.read_text(encoding="utf-8")
    return text[text.index("\n## 4. Tasks") : text.index("\n## 5. Reward")].replace("⎵", " ")


PAPER_CONSTANTS = [
    "QA_GRPO", "QA_SFT", "TAG_GRPO", "TAG_SFT", "TAG_EVAL_NO_THINK", "TAG_EVAL_THINK", "CLS_GRPO", "CLS_SFT",
    "CLS_EVAL_THINK", "CLS_EVAL_NO_THINK",
]  # fmt: skip


@pytest.mark.parametrize("name", PAPER_CONSTANTS)
def test_paper_templates_match_the_paper_doc_verbatim(name: str) -> None:
    # the code blocks of docs/paper.md §4, ⎵ turned back into a space; the blocks do not show a final line break
    blocks = [block.rstrip("\n") for block in re.findall(r"```\n(.*?)```", _paper_section4(), flags=re.DOTALL)]
    assert getattr(P, name).rstrip("\n") in blocks


def test_paper_eval_qa_matches_the_paper_doc_verbatim() -> None:
    # docs/paper.md writes the f-string fields as {Question} / {Option 1}; it omits the opening "\n" and the
    # closing "\n" + 12 spaces of the source f-string
    blocks = re.findall(r"```\n(.*?)```", _paper_section4(), flags=re.DOTALL)
    fields = {"[QUESTION]": "{Question}", **{f"[OPTION_{c}]": f"{{Option {i}}}" for i, c in enumerate("ABCD", 1)}}
    think, no_think = P.QA_EVAL_THINK, P.QA_EVAL_NO_THINK
    for placeholder, field in fields.items():
        think, no_think = think.replace(placeholder, field), no_think.replace(placeholder, field)
    assert think.startswith("\n") and think.endswith("\n" + " " * 12)
    assert think[1:-12] in blocks
    assert no_think[1:-12].endswith(blocks[blocks.index(think[1:-12]) + 1])  # "the same text ..., then:" block


def test_paper_doc_quotes_the_fixed_questions_and_tag_options() -> None:
    section = _paper_section4()
    for text in (P.TAG_QUESTION_THINK, P.TAG_QUESTION_NO_THINK, P.CLS_QUESTION, P.TAG_OPTION_GRPO, P.TAG_OPTION_EVAL,
                 P.REASONING_SFT, P.REASONING_EVAL_TURN1, P.REASONING_EVAL_TURN2):
        assert text in section
