"""The README's ``trl.GRPOTrainer`` example runs as printed, with only the model id swapped for a tiny local model."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

import vau_r1.rewards

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Using the rewards in your own trainer"
HUB_MODEL_ID = '"Qwen/Qwen2.5-0.5B-Instruct"'
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def readme_example() -> str:
    """The first python code block of the README section on custom trainers."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md lost its section {SECTION!r}"
    match = re.search(r"```python\n(.*?)```", text[text.index(SECTION) :], re.DOTALL)
    assert match is not None, "no python code block in the README section"
    return match.group(1)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, hidden-16 Qwen2 causal LM with a 300-token BPE tokenizer trained here (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out = tmp_path_factory.mktemp("tiny-qwen2")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(["<think>a man falls</think><answer>A</answer> user assistant"] * 8, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(out)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    Qwen2ForCausalLM(config).save_pretrained(out)
    return out


def test_readme_grpo_example_runs(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = readme_example()
    assert code.count(HUB_MODEL_ID) == 1, "the example must name the model exactly once"
    calls: dict[str, list[dict]] = {"format_reward": [], "accuracy_reward": []}

    def spy(fn):  # counts calls and keeps the columns TRL passed; wraps keeps __name__ for TRL's logging
        @functools.wraps(fn)
        def wrapper(completions, **kwargs):
            values = fn(completions, **kwargs)
            calls[fn.__name__].append({"n": len(completions), "values": values, **kwargs})
            return values

        return wrapper

    for name in calls:
        monkeypatch.setattr(vau_r1.rewards, name, spy(getattr(vau_r1.rewards, name)))
    monkeypatch.chdir(tmp_path)  # the example writes to a relative output_dir
    namespace: dict[str, object] = {}
    exec(compile(code.replace(HUB_MODEL_ID, repr(str(tiny_model_dir))), "README.md", "exec"), namespace)

    assert namespace["trainer"].state.global_step == 1
    for name, records in calls.items():
        assert records, f"{name} was never called by GRPOTrainer"
        record = records[0]
        assert record["n"] == 2 and len(record["values"]) == 2
        assert set(record["task"]) <= {"qa", "cls"} and set(record["answer"]) <= {"A", "Fire"}
        assert all(value in (0.0, 1.0) for value in record["values"])
    assert (tmp_path / "grpo-vau-demo").is_dir()
