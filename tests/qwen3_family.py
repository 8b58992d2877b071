"""Tests shared by tests/test_qwen3_vl.py and tests/test_qwen3_5.py: :class:`FamilyTests`, one test per property.

Each test file subclasses :class:`FamilyTests` with its ``family`` (and the LoRA targets it expects) and adds the
family's own tests. The tests build the family's tiny model (vau_r1.model.tiny) and videos in memory
(``tests/qwen3_video.py``): frames of random pixels with chosen presentation times, so that the timestamps the
prompt must carry are known independently of the code.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import qwen3_runs
import qwen3_video
import torch
from qwen3_video import FPS, clip
from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor
from transformers.video_utils import VideoMetadata

from vau_r1.data.vision import video_inputs
from vau_r1.grpo.experience import frozen_logps
from vau_r1.model.builder import ModelConfig, load_model_and_processor
from vau_r1.model.families import video_processing_for
from vau_r1.model.processing import encode_prompts
from vau_r1.model.rope_index import set_rope_index
from vau_r1.model.tokenizer import VIDEO_PAD_TOKEN, VISION_END_TOKEN, VISION_START_TOKEN
from vau_r1.policy.rollout import SamplingParams, generate_rollout, prompt_positions
from vau_r1.policy.scorer import CompletionScorer, sequence_inputs

TOL = 2e-5
MESSAGES = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Is there any anomaly?"}]}]
TWO_VIDEOS = [
    {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "then"}, {"type": "video"}]},
]


def tiny_model(family: str, **model: object):
    """The family's tiny random model and tokenizer (``model``: more ``ModelConfig`` fields)."""
    return load_model_and_processor(ModelConfig(name_or_path="tiny-random", tiny={"family": family}, **model))


def expected_times(indices: tuple[int, ...], video_fps: float) -> list[str]:
    """Each temporal patch's time as the prompt must write it: the mean of its 2 frames (last frame repeated)."""
    padded = list(indices) + ([indices[-1]] if len(indices) % 2 else [])
    return [f"{(padded[i] + padded[i + 1]) / 2 / video_fps:.1f}" for i in range(0, len(padded), 2)]


def prompt_batch(family: str, tokenizer):
    """Model inputs of two prompts (the second longer, so the first is left-padded), each with a clip."""
    videos = [video_inputs(clip((0, 1, 2, 3, 4, 5))), video_inputs(clip((0, 2, 4, 6), seed=1))]
    messages = [
        MESSAGES,
        [{"role": "user", "content": [{"type": "text", "text": "A longer question first."}, *MESSAGES[0]["content"]]}],
    ]
    return encode_prompts(tokenizer, messages, videos, family=family).model_kwargs()


def _rollout(model, tokenizer, prompt):
    params = SamplingParams(num_generations=2, max_new_tokens=6, temperature=0.7)
    return generate_rollout(
        model,
        prompt,
        params,
        eos_token_ids=[tokenizer.eos_token_id],
        pad_token_id=tokenizer.pad_token_id,
        generator=torch.Generator().manual_seed(0),
    )


def _stock_logps(model, prompt, roll) -> torch.Tensor:
    """transformers' own forward: pixels repeated per completion, positions computed by the model itself."""
    G, L = roll.num_generations, roll.completion_ids.shape[1]
    inputs = sequence_inputs(prompt, roll.completion_ids, roll.completion_mask)
    sizes = prompt["video_grid_thw"].prod(-1).tolist()
    pixels = torch.cat([c for c in torch.split(prompt["pixel_values_videos"], sizes) for _ in range(G)])
    set_rope_index(model, "transformers")
    try:
        with torch.no_grad():
            logits = model(**inputs, pixel_values_videos=pixels).logits[:, -L - 1 : -1].float() / 0.7
    finally:
        set_rope_index(model, "qwen")
    return logits.log_softmax(-1).gather(-1, roll.completion_ids.unsqueeze(-1)).squeeze(-1)


class FamilyTests:
    """The tests every Qwen3-style family passes; a test file subclasses this (as ``Test...``) per family.

    Attributes:
        family: the registered family name.
        lora_targets: the LoRA target module names the family's default must wrap.
    """

    family: str
    lora_targets: frozenset[str]

    @pytest.fixture(scope="class")
    def tiny(self):
        return tiny_model(self.family)

    def test_the_data_path_patches_by_the_models_own_vision_tower(self, tiny):
        # the tiny tower keeps 14-pixel patches (tiny_cpu's image_factor=28) and gets the family's normalisation
        assert video_processing_for(tiny[0].config) == {**qwen3_video.QWEN3_PATCHING, "patch_size": 14}

    def test_dataset_and_eval_items_have_the_checkpoints_patches(self, tmp_path):
        qwen3_video.check_data_paths_patch_for_the_model(self.family, tmp_path)

    def test_video_preprocessing_matches_transformers_processor(self):
        qwen3_video.check_video_processor_parity(self.family)

    def test_prompt_timestamps_are_the_sampled_frames_times(self, tiny) -> None:
        """The ``<t seconds>`` texts equal the sampled frames' times, per video (multi-video: each its own clip's)."""
        family, tokenizer = self.family, tiny[1]
        first, second = (0, 1, 2, 3, 4, 5), (0, 3, 7, 8, 13)  # uniform, then irregular frames of an odd count
        third = (2, 9, 11, 20)
        videos = [[video_inputs(clip(first)), video_inputs(clip(second, 3.0))], video_inputs(clip(third, 5.0))]
        batch = encode_prompts(tokenizer, [TWO_VIDEOS, MESSAGES], videos, family=family)
        expected = [expected_times(first, FPS) + expected_times(second, 3.0), expected_times(third, 5.0)]
        assert expected[0][:3] == ["0.2", "1.2", "2.2"] and expected[1] == ["1.1", "3.1"]  # hand check of the rule
        video_id = tokenizer.convert_tokens_to_ids(VIDEO_PAD_TOKEN)
        for row, times in enumerate(expected):
            ids = batch.input_ids[row][batch.attention_mask[row].bool()]
            text = tokenizer.decode(ids)
            assert re.findall(r"<([0-9.]+) seconds>", text) == times
            # one vision block per temporal patch, each of h*w/4 = 4*4/4 pads, inside the template's outer block
            blocks = re.findall(
                r"seconds>"
                + re.escape(VISION_START_TOKEN)
                + f"((?:{re.escape(VIDEO_PAD_TOKEN)})+)"
                + re.escape(VISION_END_TOKEN),
                text,
            )
            assert [b.count(VIDEO_PAD_TOKEN) for b in blocks] == [4] * len(times)
            assert int((ids == video_id).sum()) == 4 * len(times)
        assert torch.equal(batch.mm_token_type_ids == 2, batch.input_ids == video_id)
        # whole videos; the model splits them into frames
        assert batch.video_grid_thw.tolist() == [[3, 4, 4], [3, 4, 4], [2, 4, 4]]
        assert batch.second_per_grid_ts is not None and "second_per_grid_ts" not in batch.model_kwargs()

    def test_prompt_equals_the_processors_expansion(self, tiny) -> None:
        """Token ids equal those of ``Qwen3VLProcessor.replace_video_token`` on the same template text and metadata."""
        family, tokenizer = self.family, tiny[1]
        indices = (0, 2, 5, 6, 9)
        video = video_inputs(clip(indices, 4.0))
        ours = encode_prompts(tokenizer, [MESSAGES], [video], family=family).input_ids[0].tolist()
        processor = object.__new__(Qwen3VLProcessor)  # its text step only; the video processor needs torchvision
        processor.video_processor = SimpleNamespace(merge_size=2, temporal_patch_size=2)
        processor.video_token, processor.vision_start_token = VIDEO_PAD_TOKEN, VISION_START_TOKEN
        processor.vision_end_token = VISION_END_TOKEN
        metadata = VideoMetadata(total_num_frames=10, fps=4.0, frames_indices=list(indices))
        replacement = processor.replace_video_token(
            {"video_grid_thw": video.video_grid_thw, "video_metadata": [metadata]}, 0
        )
        text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
        theirs = tokenizer(text.replace(VIDEO_PAD_TOKEN, replacement), add_special_tokens=False)["input_ids"]
        assert ours == theirs

    def test_positions_equal_transformers_rule(self, tiny) -> None:
        """The project's position rule equals transformers' own ``get_rope_index`` for this family (left padding)."""
        (model, tokenizer), family = tiny, self.family
        prompt = prompt_batch(family, tokenizer)
        ours = prompt_positions(model, prompt)
        set_rope_index(model, "transformers")
        try:
            stock = prompt_positions(model, prompt)
        finally:
            set_rope_index(model, "qwen")
        assert torch.equal(ours, stock)
        # each frame block is one temporal step: its temporal positions are constant and increase block by block
        keep = prompt["attention_mask"][0].bool() & (prompt["mm_token_type_ids"][0] == 2)
        temporal = ours[0, 0, keep].reshape(3, -1)  # 3 patches x 4 tokens
        assert bool((temporal == temporal[:, :1]).all()) and bool((temporal[1:, 0] > temporal[:-1, 0]).all())

    def test_sampling_old_ref_policy_and_stock_logprobs_agree(self, tiny) -> None:
        """Sampling, old/ref (``frozen_logps``), policy (both vision paths) and a stock forward agree on log-probs."""
        (model, tokenizer), family = tiny, self.family
        prompt = prompt_batch(family, tokenizer)
        roll = _rollout(model, tokenizer, prompt)
        mask, completions = roll.completion_mask.bool(), (roll.completion_ids, roll.completion_mask)
        grpo = SimpleNamespace(reuse_vision_features=True, logprob_chunk_tokens=None, share_prompt=False,
                               temperature=0.7)  # fmt: skip
        passes = {
            "policy/shared vision": CompletionScorer(model, True)(prompt, *completions, 0.7),
            "policy/per completion": CompletionScorer(model, False)(prompt, *completions, 0.7),
            "old/ref": frozen_logps(model, prompt, roll, grpo),
            "stock forward": _stock_logps(model, prompt, roll),
        }
        for name, logp in passes.items():
            assert (logp - roll.sampled_logp)[mask].abs().max() < TOL, name

    def test_vision_tower_gradients_flow_and_freeze(self) -> None:
        """Gradients reach every vision parameter that is used (deepstack mergers too) and none when frozen."""
        family = self.family
        for freeze in (False, True):
            model, tokenizer = tiny_model(family, freeze_vision=freeze)
            prompt = prompt_batch(family, tokenizer)
            roll = _rollout(model, tokenizer, prompt)
            model.train()
            CompletionScorer(model, True)(prompt, roll.completion_ids, roll.completion_mask, 0.7).sum().backward()
            visual = dict(model.model.visual.named_parameters())
            if freeze:
                assert all(not p.requires_grad and p.grad is None for p in visual.values())
            else:
                missing = [n for n, p in visual.items() if p.grad is None or not p.grad.abs().sum() > 0]
                assert missing == [], missing
            assert model.lm_head.weight.grad is not None

    def test_lora_adapters_save_and_load(self, tmp_path) -> None:
        """LoRA adapters go where the family says (never the vision tower), and save/load gives the same log-probs."""
        family, expected_targets = self.family, self.lora_targets
        from peft import PeftModel

        model, tokenizer = tiny_model(family, lora={"r": 2, "dropout": 0.0})
        lora = [name for name, module in model.named_modules() if hasattr(module, "lora_A") and "visual" not in name]
        wrapped = {name.rsplit(".", 1)[-1] for name in lora}
        assert wrapped == expected_targets
        assert not any("visual" in n and "lora_" in n for n, _ in model.named_parameters())
        for name, param in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(param, std=0.5, generator=torch.Generator().manual_seed(1))
        prompt = prompt_batch(family, tokenizer)
        roll = _rollout(model, tokenizer, prompt)
        before = CompletionScorer(model)(prompt, roll.completion_ids, roll.completion_mask, 0.7)
        model.save_pretrained(tmp_path / "adapter")
        base, _ = tiny_model(family)
        reloaded = PeftModel.from_pretrained(base, tmp_path / "adapter")
        after = CompletionScorer(reloaded)(prompt, roll.completion_ids, roll.completion_mask, 0.7)
        assert torch.allclose(before, after, atol=1e-6)
        off = CompletionScorer(base.get_base_model() if hasattr(base, "get_base_model") else base)
        with reloaded.disable_adapter():
            plain = off(prompt, roll.completion_ids, roll.completion_mask, 0.7)
        assert (plain - after)[roll.completion_mask.bool()].abs().max() > 1e-4  # the adapters do something

    # slow: three CLI runs of the tiny model each (about 15-25 s per algorithm on 2 cores).
    @pytest.mark.slow
    @pytest.mark.parametrize("algorithm", ["grpo", "sft"])
    def test_debug_cpu_trains_checkpoints_and_resumes_exactly(self, tmp_path, algorithm):
        qwen3_runs.check_train_resume(tmp_path, algorithm, self.family)
