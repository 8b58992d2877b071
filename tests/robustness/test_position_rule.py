"""The Qwen mRoPE position rule travels with the checkpoint (``config.json`` key ``vau_r1_rope_index``).

The rule is an instance attribute that ``save_pretrained`` cannot write, so a reloaded model got transformers
5.23's rule unless the loader puts it back: the project's loaders read the key, ``restore_rope_index`` is the
one-liner for plain ``from_pretrained``, and ``vau-r1 eval run``'s loader warns on a checkpoint without it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration

from vau_r1.eval.loading import load_for_eval, resolve_model_ref
from vau_r1.model.builder import ModelConfig, load_model_and_processor
from vau_r1.model.processing import encode_prompts
from vau_r1.model.rope_index import ROPE_INDEX_KEY, restore_rope_index, saved_rope_index

GRID = (10, 4, 6)  # 10 temporal steps: text after the video is where the two rules differ
#: Positions of the two text tokens after [3 text | video GRID | 2 text] (see tests/test_processing.py).
QWEN_TEXT_AFTER = {"qwen2_5_vl": [22, 23], "qwen2_vl": [13, 14]}
TRANSFORMERS_TEXT_AFTER = [6, 7]  # 3 + max(h, w) / 2: inside the video's temporal range
CLASSES = {"qwen2_5_vl": Qwen2_5_VLForConditionalGeneration, "qwen2_vl": Qwen2VLForConditionalGeneration}


def text_after_video(model) -> list[int]:
    """The temporal positions ``model`` gives the two text tokens after a GRID video."""
    t, h, w = GRID
    types = torch.tensor([[0] * 3 + [2] * (t * h * w // 4) + [0] * 2])
    ids = torch.where(types == 2, model.config.video_token_id, 5)
    positions, _ = model.model.get_rope_index(
        ids, types, video_grid_thw=torch.tensor([GRID]), second_per_grid_ts=torch.tensor([1.0])
    )
    return positions[0, 0, -2:].tolist()


def logits(model, tokenizer, family: str) -> torch.Tensor:
    """Logits of a prompt with a GRID video (random pixels, seeded) and text after it."""
    pixels = torch.randn(GRID[0] * GRID[1] * GRID[2], 1176, generator=torch.Generator().manual_seed(0))
    video = SimpleNamespace(pixel_values_videos=pixels, video_grid_thw=torch.tensor([GRID]), second_per_grid_ts=1.0)
    chat = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Anomaly or Normal?"}]}]
    batch = encode_prompts(tokenizer, [chat], [video], family=family)
    with torch.no_grad():
        return model(**batch.model_kwargs()).logits


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen2_vl"])
def saved(request, tmp_path_factory) -> tuple[str, Path, torch.Tensor]:
    """A tiny model built by the project, saved with save_pretrained; its family, folder and reference logits."""
    family = request.param
    model, tokenizer = load_model_and_processor(ModelConfig("tiny-random", tiny={"family": family}))
    folder = tmp_path_factory.mktemp(f"tiny_{family}")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return family, folder, logits(model, tokenizer, family)


@pytest.mark.usefixtures("one_torch_thread")
def test_save_pretrained_writes_the_rule(saved) -> None:
    _, folder, _ = saved
    assert json.loads((folder / "config.json").read_text())[ROPE_INDEX_KEY] == "qwen"


@pytest.mark.usefixtures("one_torch_thread")
def test_project_loader_restores_the_original_rule(saved) -> None:
    family, folder, reference = saved
    model, tokenizer = load_model_and_processor(ModelConfig(str(folder)))
    assert text_after_video(model) == QWEN_TEXT_AFTER[family]
    torch.testing.assert_close(logits(model, tokenizer, family), reference, rtol=0, atol=1e-5)
    evaluated, _ = load_for_eval(resolve_model_ref(str(folder)), {"rope_index": "qwen"})
    assert text_after_video(evaluated) == QWEN_TEXT_AFTER[family]


@pytest.mark.usefixtures("one_torch_thread")
def test_plain_from_pretrained_needs_the_one_liner(saved) -> None:
    family, folder, reference = saved
    _, tokenizer = load_model_and_processor(ModelConfig(str(folder)))
    model = CLASSES[family].from_pretrained(folder)
    assert text_after_video(model) == TRANSFORMERS_TEXT_AFTER  # the hazard: transformers 5.23's rule
    assert (logits(model, tokenizer, family) - reference).abs().max() > 1e-3
    assert restore_rope_index(model) == "qwen"  # the documented one-liner
    assert text_after_video(model) == QWEN_TEXT_AFTER[family]
    torch.testing.assert_close(logits(model, tokenizer, family), reference, rtol=0, atol=1e-5)


def rewrite_marker(source: Path, target: Path, value: str | None) -> Path:
    """A copy of the saved checkpoint ``source`` whose config.json records ``value`` (``None``: no key)."""
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    config = json.loads((source / "config.json").read_text())
    config.pop(ROPE_INDEX_KEY)
    (target / "config.json").write_text(json.dumps(config if value is None else {**config, ROPE_INDEX_KEY: value}))
    return target


@pytest.mark.usefixtures("one_torch_thread")
def test_eval_loader_warns_on_a_checkpoint_without_the_rule(saved, tmp_path, caplog) -> None:
    family, folder, _ = saved
    unmarked = rewrite_marker(folder, tmp_path / "old_checkpoint", None)
    with caplog.at_level(logging.WARNING, logger="vau_r1.model.builder"):
        model, _ = load_for_eval(resolve_model_ref(str(unmarked)), {"rope_index": "qwen"})
    (warning,) = [r.getMessage() for r in caplog.records if ROPE_INDEX_KEY in r.getMessage()]
    assert "records no position rule" in warning and "'qwen' rule" in warning and "model_load.rope_index" in warning
    assert text_after_video(model) == QWEN_TEXT_AFTER[family]  # the configured rule is used ...
    assert saved_rope_index(model.config) == "qwen"  # ... and recorded for the next save
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vau_r1.model.rope_index"):
        plain = CLASSES[family].from_pretrained(unmarked)
        assert restore_rope_index(plain) == "qwen" and ROPE_INDEX_KEY in caplog.text
    assert text_after_video(plain) == QWEN_TEXT_AFTER[family]


@pytest.mark.usefixtures("one_torch_thread")
def test_a_recorded_transformers_rule_travels_too(saved, tmp_path, caplog) -> None:
    family, folder, _ = saved
    marked = rewrite_marker(folder, tmp_path / "transformers_rule", "transformers")
    plain = CLASSES[family].from_pretrained(marked)
    assert restore_rope_index(plain) == "transformers" and text_after_video(plain) == TRANSFORMERS_TEXT_AFTER
    with caplog.at_level(logging.WARNING, logger="vau_r1.model.builder"):
        model, _ = load_model_and_processor(ModelConfig(str(marked)))  # the configured rule wins, loudly
    assert "saved with the 'transformers' position rule but model.rope_index='qwen'" in caplog.text
    assert text_after_video(model) == QWEN_TEXT_AFTER[family]


def test_an_unknown_recorded_rule_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"config.json has vau_r1_rope_index='hf'; expected one of"):
        saved_rope_index(SimpleNamespace(vau_r1_rope_index="hf"))


@pytest.mark.usefixtures("one_torch_thread")
def test_eval_loader_checks_a_lora_adapter_against_its_manifest(tmp_path, caplog) -> None:
    # An adapter does not save its base model's config.json: the rule it was trained with is in manifest.json.
    from vau_r1.model.builder import apply_lora
    from vau_r1.model.families import get_family

    model, _ = load_model_and_processor(ModelConfig("tiny-random"))
    adapter = tmp_path / "step_000001" / "model"
    apply_lora(model, {"r": 2, "alpha": 2, "dropout": 0.0, "target_modules": ["q_proj"], "exclude_vision": True},
               get_family("qwen2_5_vl")).save_pretrained(adapter)  # fmt: skip
    settings = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**settings, "base_model_name_or_path": "tiny-random"}))
    with caplog.at_level(logging.WARNING, logger="vau_r1.eval.loading"):
        load_for_eval(resolve_model_ref(str(adapter)), {"rope_index": "qwen"})
    assert "records no position rule (manifest.json config.model.rope_index)" in caplog.text  # no manifest
    manifest = {"config": {"model": {"name_or_path": "tiny-random", "rope_index": "qwen"}}}
    (adapter.parent / "manifest.json").write_text(json.dumps(manifest))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vau_r1.eval.loading"):
        merged, _ = load_for_eval(resolve_model_ref(str(adapter)), {"rope_index": "qwen"})
    assert "position rule" not in caplog.text and text_after_video(merged) == QWEN_TEXT_AFTER["qwen2_5_vl"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vau_r1.eval.loading"):
        load_for_eval(resolve_model_ref(str(adapter)), {"rope_index": "transformers"})
    assert "was trained with the 'qwen' position rule" in caplog.text
