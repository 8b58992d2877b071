"""Qwen3-VL: timestamped frames, positions, log-probs across every pass, vision gradients, LoRA, processor parity.

Qwen3-VL writes each temporal patch's time as ``<t seconds>`` text before that patch's own vision block and adds
deepstack features of early vision blocks into the first LLM layers (``docs/qwen_vl_notes.md``, Qwen3 section).
The tests shared with Qwen3.5 live in ``tests/qwen3_family.py`` (:class:`FamilyTests`); the tiny model keeps
14-pixel patches.
"""

from __future__ import annotations

import pytest
import qwen3_family as checks
import torch
from test_experiments import DATA, EXPERIMENT_DIR

from vau_r1.model.builder import DEFAULT_LORA_TARGETS
from vau_r1.model.families import get_family

FAMILY = "qwen3_vl"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TestQwen3VL(checks.FamilyTests):
    family = FAMILY
    lora_targets = frozenset(DEFAULT_LORA_TARGETS)

    def test_deepstack_features_are_shared_not_dropped(self, tiny):
        # Zeroing the deepstack features of the shared vision output changes the log-probs: they must be kept.
        model, tokenizer = tiny
        prompt = checks.prompt_batch(FAMILY, tokenizer)
        feats = model.get_video_features(prompt["pixel_values_videos"], prompt["video_grid_thw"], return_dict=True)
        assert len(feats.deepstack_features) == len(model.config.vision_config.deepstack_visual_indexes) == 1
        full = model(**prompt).logits[:, -1]
        feats.deepstack_features = [tuple(torch.zeros_like(f) for f in layer) for layer in feats.deepstack_features]
        inputs = {k: v for k, v in prompt.items() if k != "pixel_values_videos"}
        without = model(**inputs, mm_encoder_outputs={"video": feats}).logits[:, -1]
        assert (full - without).abs().max() > 1e-3


@pytest.mark.parametrize("task", ["qa", "tag"])
def test_beyond_paper_experiments_are_the_qwen2_5_ones_with_qwen3_vl(task):
    # Only the model and its video patching differ (same visual-token budget), and the file says it is not the paper's.
    name, base = f"{task}_grpo_qwen3_vl_4b", f"{task}_grpo_qwen2_5_vl_3b"
    assert "BEYOND THE PAPER" in (EXPERIMENT_DIR / f"{name}.yaml").read_text()
    ours, theirs = composed(f"experiment={name}", *DATA), composed(f"experiment={base}", *DATA)
    differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    video = {"data.video.min_pixels", "data.video.max_pixels", "data.video.total_pixels", "data.video.image_factor"}
    assert set(differ) - video <= {"run_name", "output_dir"} | {k for k in differ if k.startswith("model.")}
    assert ours["model.name_or_path"] == "Qwen/Qwen3-VL-4B-Instruct"
    family = get_family(FAMILY)
    assert ours["data.video.image_factor"] == family.patch_size * family.spatial_merge_size
    for key in ("min_pixels", "max_pixels", "total_pixels"):  # the same number of visual tokens
        tokens = [c[f"data.video.{key}"] // c["data.video.image_factor"] ** 2 for c in (ours, theirs)]
        assert tokens[0] == tokens[1], key


def composed(*overrides: str) -> dict[str, object]:
    from test_experiments import composed as compose_train
    from test_experiments import leaves

    return leaves(compose_train(*overrides))
