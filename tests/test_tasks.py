"""Messages, reasoning turns, SFT targets, reward columns and task specs (:mod:`vau_r1.tasks`)."""

from __future__ import annotations

import importlib.resources
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from vau_r1.data.schema import CLASS_LABELS, VideoSample
from vau_r1.tasks import (
    PROMPT_PRESETS,
    TASK_SPECS,
    build_messages,
    build_reasoning_turns,
    format_span,
    get_task,
    reward_columns,
    target_text,
)
from vau_r1.tasks import prompts as P
from vau_r1.tasks import spec as spec_module

ANOMALY = VideoSample(
    video="msad_Assault_3.mp4", source="msad", row=4, question="What happens?", options=("a", "b", "c", "d"),
    answer="B", anomaly_class="Assault", is_normal=False, span_s=(1.26, 3.44),
    description="A man runs.", reasoning="He hits someone.",
)  # fmt: skip
NORMAL = VideoSample(
    video="ucf_Normal_Videos001_x264.mp4", source="ucf", row=9, question="Q?", options=("a", "b", "c", "d"),
    answer="A", anomaly_class="Normal", is_normal=True, span_s=None, description="A street.", reasoning="Calm.",
)  # fmt: skip
BARE = VideoSample(video="ecva_17.mp4", source="ecva", row=12)  # nothing annotated
VIDEO_PAD = "<|vision_start|><|video_pad|><|vision_end|>"


def _types(message: dict) -> list[str]:
    return [part["type"] for part in message["content"]]


# --- messages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["qa", "tag", "cls", "reasoning"])
def test_training_presets_put_text_first_and_eval_presets_video_first(task: str) -> None:
    for name in PROMPT_PRESETS[task]:
        (user,) = build_messages(ANOMALY, task, name)
        expected = ["video", "text"] if name.startswith("paper_eval") else ["text", "video"]
        assert user["role"] == "user" and _types(user) == expected, name


def test_video_first_override_and_video_path() -> None:
    (user,) = build_messages(ANOMALY, "qa", "paper_grpo", video_first=True, video=Path("/data/msad/x.mp4"))
    assert user["content"][0] == {"type": "video", "video": "/data/msad/x.mp4"}
    (user,) = build_messages(ANOMALY, "qa", "paper_eval_think", video_first=False)
    assert _types(user) == ["text", "video"]
    assert user["content"][1] == {"type": "video", "video": "msad_Assault_3.mp4"}  # defaults to the CSV name


def test_parts_carry_only_the_keys_of_their_type() -> None:
    # extra keys (e.g. video: None on a text part) make Qwen's template emit extra video pads
    for task in PROMPT_PRESETS:
        for name in PROMPT_PRESETS[task]:
            for message in build_messages(ANOMALY, task, name, system_prompt="S", duration_s=4.0):
                for part in message["content"]:
                    assert set(part) == {"type", part["type"]}


def test_no_system_message_unless_asked() -> None:
    assert [m["role"] for m in build_messages(ANOMALY, "tag")] == ["user"]
    system, user = build_messages(ANOMALY, "tag", system_prompt="You are a video analyst.")
    assert system == {"role": "system", "content": [{"type": "text", "text": "You are a video analyst."}]}
    assert user["role"] == "user"


def test_default_tag_message_states_the_duration() -> None:
    (user,) = build_messages(ANOMALY, "tag", duration_s=12.34)
    assert user["content"][0]["text"].startswith("The video lasts 12.3 seconds. Is there any anomaly in the video?")
    (user,) = build_messages(ANOMALY, "tag")
    assert "The video lasts" not in user["content"][0]["text"]


def test_reasoning_turns_attach_the_video_once() -> None:
    turns = build_reasoning_turns(ANOMALY, "paper_eval_think", video="/v/a.mp4")
    assert turns.first == build_messages(ANOMALY, "reasoning", "paper_eval_think", video="/v/a.mp4")
    assert turns.first[0]["content"][1]["text"] == P.REASONING_EVAL_TURN1
    assert turns.second_text == P.REASONING_EVAL_TURN2
    history = turns.history("Five sentences.")
    assert [m["role"] for m in history] == ["user", "assistant", "user"]
    assert history[1]["content"] == [{"type": "text", "text": "Five sentences."}]
    assert history[2]["content"] == [{"type": "text", "text": P.REASONING_EVAL_TURN2}]  # text only
    videos = [part for message in history for part in message["content"] if part["type"] == "video"]
    assert videos == [{"type": "video", "video": "/v/a.mp4"}]


def test_reasoning_turns_default_and_single_turn_preset() -> None:
    turns = build_reasoning_turns(ANOMALY, system_prompt="S")
    assert [m["role"] for m in turns.history("d")] == ["system", "user", "assistant", "user"]
    assert _types(turns.first[1]) == ["text", "video"]
    with pytest.raises(ValueError, match="reasoning preset 'paper_sft' has a single turn"):
        build_reasoning_turns(ANOMALY, "paper_sft")


def _qwen_template():
    """The Qwen2.5-VL chat template shipped with trl (byte-identical to Qwen2-VL's)."""
    jinja2 = pytest.importorskip("jinja2.sandbox", reason="jinja2 is needed to render the chat template")
    try:
        source = importlib.resources.files("trl").joinpath("chat_templates/qwen2_5_vl.jinja").read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        pytest.skip("trl's copy of the Qwen2.5-VL chat template is not installed")
    env = jinja2.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(source)


def test_qwen_chat_template_renders_training_messages() -> None:
    template = _qwen_template()
    messages = build_messages(ANOMALY, "qa", "paper_grpo", video="v.mp4")
    rendered = template.render(messages=messages, add_generation_prompt=True)
    text = messages[0]["content"][0]["text"]
    assert rendered == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"  # the template's default system prompt
        f"<|im_start|>user\n{text}{VIDEO_PAD}<|im_end|>\n<|im_start|>assistant\n"
    )


def test_qwen_chat_template_renders_eval_and_reasoning_messages() -> None:
    template = _qwen_template()
    turns = build_reasoning_turns(ANOMALY, "paper_eval_think", video="v.mp4")
    rendered = template.render(messages=turns.history("D."), add_generation_prompt=True, add_vision_id=True)
    assert rendered.count(VIDEO_PAD) == 1 and rendered.count("Video 1: ") == 1
    assert f"user\nVideo 1: {VIDEO_PAD}{P.REASONING_EVAL_TURN1}<|im_end|>" in rendered
    assert rendered.endswith(f"<|im_start|>user\n{P.REASONING_EVAL_TURN2}<|im_end|>\n<|im_start|>assistant\n")


# --- targets -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "task", "preset", "think", "expected"),
    [
        # QA: the answer letter
        (ANOMALY, "qa", "default", False, "<answer>B</answer>"),
        # QA with think: <think> directly before <answer>
        (ANOMALY, "qa", "default", True, "<think>He hits someone.</think><answer>B</answer>"),
        # QA paper CoT target (initial commit): a space after </think>
        (ANOMALY, "qa", "paper_sft_think", True, "<think>He hits someone.</think> <answer>B</answer>"),
        # TAG anomaly: span rounded to 0.1 s like the paper (1.26 -> 1.3, 3.44 -> 3.4)
        (ANOMALY, "tag", "default", False, "<answer>Anomaly</answer><glue>[1.3, 3.4]</glue>"),
        # TAG normal video: Normal and the [-1.0, -1.0] span
        (NORMAL, "tag", "default_no_think", False, "<answer>Normal</answer><glue>[-1.0, -1.0]</glue>"),
        # TAG with think
        (NORMAL, "tag", "default", True, "<think>Calm.</think><answer>Normal</answer><glue>[-1.0, -1.0]</glue>"),
        # TAG paper SFT: glue only, with the trailing period
        (ANOMALY, "tag", "paper_sft", False, "<glue>[1.3, 3.4]</glue>."),
        (NORMAL, "tag", "paper_sft", False, "<glue>[-1.0, -1.0]</glue>."),
        # TAG paper CoT target: <think>, <answer> and glue, trailing period
        (ANOMALY, "tag", "paper_sft_think", True,
         "<think>He hits someone.</think><answer>Anomaly</answer><glue>[1.3, 3.4]</glue>."),
        # the trailing period belongs to the paper preset only
        (ANOMALY, "tag", "paper_grpo", False, "<answer>Anomaly</answer><glue>[1.3, 3.4]</glue>"),
        # CLS: the canonical class label
        (ANOMALY, "cls", "default", False, "<answer>Assault</answer>"),
        (NORMAL, "cls", "paper_sft_think", True, "<think>Calm.</think><answer>Normal</answer>"),
        # reasoning: the description text
        (ANOMALY, "reasoning", "paper_sft", False, "A man runs."),
    ],
)  # fmt: skip
def test_target_text(sample: VideoSample, task: str, preset: str, think: bool, expected: str) -> None:
    assert target_text(sample, task, preset, think=think) == expected


def test_target_label_is_canonicalised_and_span_formatting() -> None:
    sample = VideoSample(video="v.mp4", source=None, row=1, anomaly_class="traffic accident")
    assert target_text(sample, "cls") == "<answer>Traffic_accident</answer>"
    assert format_span((0.04, 1634.0)) == "[0.0, 1634.0]"
    assert format_span((12, 20)) == "[12.0, 20.0]"  # ints print as floats, like the paper's round(float, 1)


def test_tag_target_of_a_normal_row_with_an_interval_is_the_normal_span() -> None:
    # two ECVA Normal rows carry real intervals; the prompt defines Normal as [-1.0, -1.0]
    sample = VideoSample(video="ecva_5.mp4", source="ecva", row=3, anomaly_class="Normal", is_normal=True,
                         span_s=(2.0, 150.0))  # fmt: skip
    assert target_text(sample, "tag") == "<answer>Normal</answer><glue>[-1.0, -1.0]</glue>"


@pytest.mark.parametrize(
    ("task", "think", "message"),
    [
        ("qa", False, r"ecva_17\.mp4 \(row 12\): task 'qa' needs an answer letter"),
        ("tag", False, r"ecva_17\.mp4 \(row 12\): task 'tag' needs a grounding target"),
        ("cls", False, r"ecva_17\.mp4 \(row 12\): task 'cls' needs a known anomaly class"),
        ("reasoning", False, r"ecva_17\.mp4 \(row 12\): task 'reasoning' needs a description"),
    ],
)
def test_target_errors_name_the_video_and_task(task: str, think: bool, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        target_text(BARE, task, think=think)


def test_think_target_needs_reasoning() -> None:
    sample = VideoSample(video="v.mp4", source=None, row=2, answer="C")
    assert target_text(sample, "qa") == "<answer>C</answer>"
    with pytest.raises(ValueError, match=r"v\.mp4 \(row 2\): task 'qa' needs a reasoning text"):
        target_text(sample, "qa", think=True)


def test_anomaly_with_unknown_span_has_no_tag_target() -> None:
    # UCF anomalies have no interval (-1/-1 in the CSV): unusable for TAG, usable for CLS
    sample = VideoSample(video="ucf_Abuse001_x264.mp4", source="ucf", row=5, anomaly_class="Abuse", is_normal=False)
    with pytest.raises(ValueError, match="task 'tag' needs a grounding target"):
        reward_columns(sample, "tag")
    assert reward_columns(sample, "cls") == {"task": "cls", "answer": "Abuse", "span": None}


# --- reward columns ----------------------------------------------------------------------------------


def test_reward_columns_per_task() -> None:
    assert reward_columns(ANOMALY, "qa") == {"task": "qa", "answer": "B", "span": None}
    assert reward_columns(ANOMALY, "tag") == {"task": "tag", "answer": "Anomaly", "span": [1.26, 3.44]}
    assert reward_columns(NORMAL, "tag") == {"task": "tag", "answer": "Normal", "span": [-1.0, -1.0]}
    assert reward_columns(NORMAL, "cls") == {"task": "cls", "answer": "Normal", "span": None}
    assert reward_columns(BARE, "reasoning") == {"task": "reasoning", "answer": None, "span": None}


def test_reward_columns_errors() -> None:
    with pytest.raises(ValueError, match=r"ecva_17\.mp4 \(row 12\): task 'qa' needs an answer letter"):
        reward_columns(BARE, "qa")
    bad_letter = VideoSample(video="x.mp4", source=None, row=1, answer="D. Green trash bin")
    with pytest.raises(ValueError, match=r"got 'D\. Green trash bin'"):
        reward_columns(bad_letter, "qa")
    with pytest.raises(ValueError, match="Unknown task 'vqa'"):
        reward_columns(ANOMALY, "vqa")


# --- task specs ----------------------------------------------------------------------------------------


def test_task_specs() -> None:
    assert list(TASK_SPECS) == ["qa", "tag", "cls", "reasoning"]
    assert get_task("qa").reward_names == ("format", "accuracy")
    assert get_task("tag").reward_names == ("format", "accuracy", "temporal_iou")
    assert get_task("cls").reward_names == ("format", "accuracy")
    assert get_task("reasoning").reward_names == ()
    assert [spec.grounding for spec in TASK_SPECS.values()] == [False, True, False, False]
    for spec in TASK_SPECS.values():
        assert spec.default_preset in PROMPT_PRESETS[spec.name]
    with pytest.raises(ValueError, match=r"Unknown task 'QA'; expected one of \['qa', 'tag', 'cls', 'reasoning'\]"):
        get_task("QA")


@pytest.fixture
def fake_parsing(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """A stand-in ``vau_r1.rewards.parsing`` recording how TaskSpec.parse calls the parsers."""
    module = types.ModuleType("vau_r1.rewards.parsing")
    module.parse_choice = lambda text: ("choice", text)
    module.parse_label = lambda text, labels: ("label", text, len(labels))
    module.parse_anomaly = lambda text: ("anomaly", text)
    module.parse_span = lambda text: ("span", text)
    monkeypatch.setitem(sys.modules, "vau_r1.rewards.parsing", module)
    spec_module._import.cache_clear()
    yield module
    spec_module._import.cache_clear()


def test_parse_dispatch(fake_parsing: types.ModuleType) -> None:
    assert get_task("qa").parse("x") == ("choice", "x")
    assert get_task("cls").parse("x") == ("label", "x", len(CLASS_LABELS))  # the 20 labels are passed
    assert get_task("tag").parse("x") == (("anomaly", "x"), ("span", "x"))
    assert get_task("reasoning").parse("  free text \n") == "free text"


def test_parse_reports_a_missing_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vau_r1.rewards.parsing", types.ModuleType("vau_r1.rewards.parsing"))
    spec_module._import.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"cannot import answer parser 'vau_r1\.rewards\.parsing\.parse_choice'"):
            get_task("qa").parse("<answer>A</answer>")
    finally:
        spec_module._import.cache_clear()


def test_parse_with_the_real_parsers() -> None:
    pytest.importorskip("vau_r1.rewards.parsing", reason="vau_r1.rewards.parsing is not available")
    assert get_task("qa").parse("<think>t</think><answer>C</answer>") == "C"
    assert get_task("cls").parse("<think>t</think><answer>Traffic_accident</answer>") == "Traffic_accident"
    assert get_task("tag").parse("<think>t</think><answer>Anomaly</answer><glue>[1.2, 3.4]</glue>") == (
        "Anomaly",
        (1.2, 3.4),
    )
    # the targets this module writes parse back to the reward columns
    for task in ("qa", "tag", "cls"):
        columns = reward_columns(ANOMALY, task)
        parsed = get_task(task).parse(target_text(ANOMALY, task, think=True))
        expected = (columns["answer"], (1.3, 3.4)) if task == "tag" else columns["answer"]
        assert parsed == expected, task
