"""encode_prompts: chat rendering, video-pad expansion, mm_token_type_ids, padding, truncation, and the model
inputs it produces, checked against transformers' own Qwen2_5_VLProcessor and against the tiny model."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import Qwen2_5_VLProcessor

from vau_r1.data.video import VideoClip
from vau_r1.data.vision import video_inputs
from vau_r1.model.builder import ModelConfig, load_model_and_processor
from vau_r1.model.processing import PromptBatch, _clean_messages, encode_prompts, mm_token_type_ids
from vau_r1.model.tiny import tiny_bpe_tokenizer

QUESTION = "Is there any anomaly in the video? Answer 'Anomaly' or 'Normal'."


def make_video(num_frames: int, height: int, width: int, fps: float = 2.0, seed: int = 0):
    """Preprocess random frames with the library's own video_inputs (grid t=frames/2, h=H/14, w=W/14)."""
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (num_frames, 3, height, width), generator=generator).float()
    clip = VideoClip(
        frames=frames,
        timestamps_s=tuple(i / fps for i in range(num_frames)),
        frame_indices=tuple(range(num_frames)),
        sample_fps=fps,
        duration_s=num_frames / fps,
        video_fps=fps,
        total_frames=num_frames,
        path="synthetic.mp4",
        original_size=(height, width),
    )
    return video_inputs(clip)


def chat(text: str, video_first: bool = False) -> list[dict]:
    parts = [{"type": "text", "text": text}, {"type": "video", "video": "clip.mp4"}]
    return [{"role": "user", "content": parts[::-1] if video_first else parts}]


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_bpe_tokenizer()


@pytest.fixture(scope="module")
def videos():
    # grids (4, 4, 6) -> 24 tokens and (2, 4, 4) -> 8 tokens; sample fps 2 and 1 -> 1.0 and 2.0 s per grid step
    return [make_video(8, 56, 84, fps=2.0, seed=1), make_video(4, 56, 56, fps=1.0, seed=2)]


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = load_model_and_processor(ModelConfig("tiny-random"))
    return model, tokenizer


def test_template_renders_default_system_prompt_and_one_video_block(tokenizer):
    text = tokenizer.apply_chat_template(chat("Hi"), tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHi<|vision_start|><|video_pad|><|vision_end|><|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_arrow_style_parts_do_not_add_video_pads(tokenizer, videos):
    # HF datasets give every part every key; Qwen's template tests `'image' in content` first and so renders
    # both parts as images
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "Hi", "video": None, "image": None},
        {"type": "video", "text": None, "video": "clip.mp4", "image": None},
    ]}]  # fmt: skip
    raw = tokenizer.apply_chat_template(messages, tokenize=False)
    assert raw.count("<|image_pad|>") == 2 and "<|video_pad|>" not in raw  # the trap, template as shipped
    assert tokenizer.apply_chat_template(_clean_messages(messages, 0), tokenize=False).count("<|video_pad|>") == 1
    batch = encode_prompts(tokenizer, [messages], [videos[0]])
    assert int((batch.mm_token_type_ids == 2).sum()) == 24


def test_video_pads_expand_to_grid_tokens_with_left_padding(tokenizer, videos):
    batch = encode_prompts(tokenizer, [chat(QUESTION), chat("Why?")], videos)
    video_id = tokenizer.convert_tokens_to_ids("<|video_pad|>")
    for row, video in enumerate(videos):
        t, h, w = video.video_grid_thw[0].tolist()
        assert int((batch.input_ids[row] == video_id).sum()) == t * h * w // 2**2
        assert torch.equal(batch.mm_token_type_ids[row] == 2, batch.input_ids[row] == video_id)
    assert not (batch.mm_token_type_ids == 1).any()
    # the second prompt is shorter: left padding, pad id, mask 0
    pad = batch.attention_mask[1] == 0
    assert pad.any() and not (batch.attention_mask[0] == 0).any()
    assert pad[: int(pad.sum())].all()
    assert (batch.input_ids[1][pad] == tokenizer.pad_token_id).all()
    assert batch.input_ids[1, -1] != tokenizer.pad_token_id
    assert batch.video_grid_thw.tolist() == [[4, 4, 6], [2, 4, 4]]
    assert batch.second_per_grid_ts.tolist() == [1.0, 2.0]
    assert batch.pixel_values_videos.shape == (96 + 32, 1176)


def test_right_padding(tokenizer, videos):
    batch = encode_prompts(tokenizer, [chat(QUESTION), chat("Why?")], videos, padding_side="right")
    assert batch.attention_mask[1, 0] == 1 and batch.attention_mask[1, -1] == 0


class StubVideoProcessor:
    """Stands in for the torchvision-backed video processor: returns precomputed ``video_inputs`` tensors."""

    merge_size = 2
    temporal_patch_size = 2

    def __init__(self, videos) -> None:
        self.videos = videos

    def __call__(self, _frames, **_kwargs) -> dict:
        return {
            "pixel_values_videos": torch.cat([v.pixel_values_videos for v in self.videos]),
            "video_grid_thw": torch.cat([v.video_grid_thw for v in self.videos]),
            "video_metadata": [SimpleNamespace(sampled_fps=2 / v.second_per_grid_ts) for v in self.videos],
        }


def reference_processor(tokenizer, videos) -> Qwen2_5_VLProcessor:
    """transformers' Qwen2_5_VLProcessor with :class:`StubVideoProcessor`.

    Its __init__ insists on a torchvision-backed video processor, so the instance is made without it; its
    __call__ (placeholder expansion, tokenization, padding, mm_token_type_ids, second_per_grid_ts) is real.
    """
    processor = object.__new__(Qwen2_5_VLProcessor)
    processor.tokenizer, processor.image_processor, processor.chat_template = tokenizer, None, None
    processor.video_processor = StubVideoProcessor(videos)
    processor.image_token, processor.video_token = "<|image_pad|>", "<|video_pad|>"
    processor.image_token_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    processor.video_token_id = tokenizer.convert_tokens_to_ids("<|video_pad|>")
    return processor


def reference_batch(tokenizer, conversations, videos) -> dict[str, torch.Tensor]:
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    processor = reference_processor(tokenizer, videos)
    frames = [torch.zeros(2, 3, 28, 28) for _ in videos]  # only counted; the stub supplies the tensors
    return dict(
        processor(text=texts, videos=frames, padding=True, padding_side="left", add_special_tokens=False,
                  return_tensors="pt")
    )  # fmt: skip


def test_matches_transformers_processor(tokenizer, videos):
    conversations = [chat(QUESTION), chat("Why?", video_first=True)]
    ours = encode_prompts(tokenizer, conversations, videos).model_kwargs()
    reference = reference_batch(tokenizer, conversations, videos)
    assert set(ours) == set(reference)
    for key, value in reference.items():
        assert torch.equal(ours[key], value.to(ours[key].dtype)), key


def test_family_decides_video_kwargs(tokenizer, videos):
    qwen2_5 = encode_prompts(tokenizer, [chat(QUESTION)], videos[:1]).model_kwargs()
    qwen2 = encode_prompts(tokenizer, [chat(QUESTION)], videos[:1], family="qwen2_vl").model_kwargs()
    assert "second_per_grid_ts" in qwen2_5 and "second_per_grid_ts" not in qwen2
    assert {"mm_token_type_ids", "video_grid_thw", "pixel_values_videos"} <= set(qwen2)
    text_only = encode_prompts(tokenizer, [[{"role": "user", "content": "Hi"}]], [None]).model_kwargs()
    assert set(text_only) == {"input_ids", "attention_mask", "mm_token_type_ids"}


def test_mm_token_type_ids_marks_images_and_videos():
    ids = torch.tensor([[1, 8, 9, 9, 2]])
    assert mm_token_type_ids(ids, video_token_id=9, image_token_id=8).tolist() == [[0, 1, 2, 2, 0]]


def test_video_count_mismatch_names_the_sample(tokenizer, videos):
    with pytest.raises(ValueError, match=r"sample 1: .* 1 video placeholder\(s\) but 2 video\(s\)"):
        encode_prompts(tokenizer, [chat(QUESTION), chat("Why?")], [videos[0], videos])
    with pytest.raises(ValueError, match="sample 0: content part of type 'image'"):
        encode_prompts(tokenizer, [[{"role": "user", "content": [{"type": "image"}]}]], [None])


def test_truncation_cuts_text_only_and_refuses_to_cut_the_video(tokenizer, videos):
    full = encode_prompts(tokenizer, [chat(QUESTION, video_first=True)], videos[:1])
    length = full.prompt_length
    cut = encode_prompts(tokenizer, [chat(QUESTION, video_first=True)], videos[:1], max_prompt_tokens=length - 3)
    assert torch.equal(cut.input_ids, full.input_ids[:, 3:])
    assert torch.equal(cut.mm_token_type_ids, full.mm_token_type_ids[:, 3:])
    start = int((full.mm_token_type_ids[0] == 2).nonzero()[0])  # first video token; start - 1 is <|vision_start|>
    with pytest.raises(ValueError, match=r"sample 0: .*cut into the video\. Raise max_prompt_tokens to at least"):
        encode_prompts(tokenizer, [chat(QUESTION, video_first=True)], videos[:1], max_prompt_tokens=length - start)
    kept = encode_prompts(
        tokenizer, [chat(QUESTION, video_first=True)], videos[:1], max_prompt_tokens=length - start + 1
    )
    assert kept.input_ids[0, 0] == tokenizer.convert_tokens_to_ids("<|vision_start|>")


# ---------------------------------------------------------------- with the tiny model


def test_rope_index_uses_second_per_grid_ts(tiny, videos):
    model, tokenizer = tiny
    batch = encode_prompts(tokenizer, [chat(QUESTION)], videos[:1])
    args = dict(input_ids=batch.input_ids, mm_token_type_ids=batch.mm_token_type_ids,
                video_grid_thw=batch.video_grid_thw, attention_mask=batch.attention_mask)  # fmt: skip
    slow, _ = model.model.get_rope_index(**args, second_per_grid_ts=torch.tensor([1.0]))
    fast, _ = model.model.get_rope_index(**args, second_per_grid_ts=torch.tensor([0.5]))
    video = batch.mm_token_type_ids[0] == 2
    start = int(slow[0, 0, video].min())
    t_index = torch.arange(4).repeat_interleave(2 * 3)  # (t, h/2, w/2) = (4, 2, 3) tokens in t-major order
    tokens_per_second = model.config.vision_config.tokens_per_second
    assert slow[0, 0, video].tolist() == (start + t_index * tokens_per_second * 1).tolist()
    assert fast[0, 0, video].tolist() == (start + (t_index * tokens_per_second * 0.5).long()).tolist()
    assert torch.equal(slow[1:, :, video], fast[1:, :, video])  # height/width positions don't depend on time
    # text after the video continues after its last temporal position (start + 6 or start + 3, then + 1)
    after = int(video.nonzero()[-1]) + 1
    assert slow[:, 0, after].tolist() == [start + 7] * 3 and fast[:, 0, after].tolist() == [start + 4] * 3
    # and the forward pass really receives it
    kwargs = batch.model_kwargs()
    with torch.no_grad():
        base = model(**kwargs).logits
        kwargs["second_per_grid_ts"] = torch.tensor([0.5])
        assert (model(**kwargs).logits - base).abs().max() > 1e-3


def test_logits_need_mm_token_type_ids_and_match_the_processor_path(tiny, videos):
    model, tokenizer = tiny
    conversations = [chat(QUESTION), chat("Why?")]
    ours = encode_prompts(tokenizer, conversations, videos).model_kwargs()
    reference = reference_batch(tokenizer, conversations, videos)
    mask = ours["attention_mask"].bool()
    with torch.no_grad():
        logits = model(**ours).logits
        reference_logits = model(**reference).logits
        without_types = model(**{k: v for k, v in ours.items() if k != "mm_token_type_ids"}).logits
    torch.testing.assert_close(logits, reference_logits, rtol=0, atol=1e-6)
    assert (logits - without_types)[mask].abs().max() > 1e-2


def test_left_padding_matches_unpadded_single_example(tiny, videos):
    model, tokenizer = tiny
    batch = encode_prompts(tokenizer, [chat(QUESTION), chat("Why?")], videos)
    single = encode_prompts(tokenizer, [chat("Why?")], videos[1:])
    assert batch.attention_mask[1].sum() < batch.prompt_length  # really padded
    with torch.no_grad():
        padded_last = model(**batch.model_kwargs()).logits[1, -1]
        single_last = model(**single.model_kwargs()).logits[0, -1]
    torch.testing.assert_close(padded_last, single_last, rtol=0, atol=1e-4)


def test_generate_with_encoded_batch_matches_single_examples(tiny, videos):
    model, tokenizer = tiny
    batch = encode_prompts(tokenizer, [chat(QUESTION), chat("Why?")], videos)
    settings = dict(max_new_tokens=6, do_sample=False, eos_token_id=None)  # no early stop: fixed length
    with torch.no_grad():
        together = model.generate(**batch.model_kwargs(), **settings)[:, batch.prompt_length :]
        for row, conversation in enumerate([chat(QUESTION), chat("Why?")]):
            single = encode_prompts(tokenizer, [conversation], videos[row : row + 1])
            alone = model.generate(**single.model_kwargs(), **settings)[:, single.prompt_length :]
            assert torch.equal(together[row], alone[0]), row
    assert together.shape == (2, 6)


def test_qwen2_vl_forward_without_second_per_grid_ts(videos):
    model, tokenizer = load_model_and_processor(ModelConfig("tiny-random", family="qwen2_vl"))
    batch = encode_prompts(tokenizer, [chat(QUESTION), chat("Why?")], videos, family="qwen2_vl")
    assert isinstance(batch, PromptBatch) and batch.family == "qwen2_vl"
    with torch.no_grad():
        logits = model(**batch.model_kwargs()).logits
        # unlike Qwen2.5-VL, Qwen2-VL in transformers 5.23 refuses to run without the types
        with pytest.raises(ValueError, match="mm_token_type_ids"):
            model(**{k: v for k, v in batch.model_kwargs().items() if k != "mm_token_type_ids"})
    assert logits.shape[:2] == batch.input_ids.shape and torch.isfinite(logits).all()


# ---------------------------------------------------------------- mRoPE position rule


def positions_for(model, grid_thw: tuple[int, int, int], text_before: int = 3, text_after: int = 2):
    """Positions of [text_before text | video | text_after text] from the model's get_rope_index."""
    t, h, w = grid_thw
    num_video = t * h * w // 4
    types = torch.tensor([[0] * text_before + [2] * num_video + [0] * text_after])
    ids = torch.where(types == 2, model.config.video_token_id, 5)
    return model.model.get_rope_index(
        ids, types, video_grid_thw=torch.tensor([grid_thw]), second_per_grid_ts=torch.tensor([1.0])
    )


@pytest.mark.parametrize(
    ("family", "rule", "interval", "text_after_video", "delta"),
    [
        # Qwen2.5-VL: temporal step tokens_per_second (2) * 1 s; text continues after the last temporal position
        ("qwen2_5_vl", "qwen", 2, [22, 23], 24 - 65),
        # transformers 5.23 restarts text at 3 + max(h, w) / 2 = 6, inside the video's temporal range
        ("qwen2_5_vl", "transformers", 2, [6, 7], 22 - 65),
        # Qwen2-VL: temporal step 1
        ("qwen2_vl", "qwen", 1, [13, 14], 15 - 65),
    ],
)
def test_rope_index_rules(family, rule, interval, text_after_video, delta):
    model, _ = load_model_and_processor(ModelConfig("tiny-random", tiny={"family": family}, rope_index=rule))
    positions, deltas = positions_for(model, (10, 4, 6))
    video = positions[:, 0, 3:63]
    assert positions[:, 0, :3].tolist() == [[0, 1, 2]] * 3
    assert video[0].tolist() == [3 + interval * step for step in range(10) for _ in range(6)]
    assert video[1].tolist() == [3 + row for _ in range(10) for row in range(2) for _ in range(3)]
    assert video[2].tolist() == [3 + col for _ in range(20) for col in range(3)]
    assert positions[:, 0, 63:].tolist() == [text_after_video] * 3
    assert deltas.tolist() == [[delta]]


@pytest.mark.parametrize(("rule", "agrees"), [("qwen", True), ("transformers", False)])
def test_forward_over_a_kv_cache_matches_a_full_forward(rule, agrees):
    model, tokenizer = load_model_and_processor(ModelConfig("tiny-random", rope_index=rule))
    batch = encode_prompts(tokenizer, [chat("Hi")], [make_video(20, 56, 84, fps=2.0)])  # 10 temporal steps
    new_tokens = torch.tensor([[101, 102]])
    full_kwargs = batch.model_kwargs()
    full_kwargs["input_ids"] = torch.cat([batch.input_ids, new_tokens], 1)
    full_kwargs["attention_mask"] = torch.ones_like(full_kwargs["input_ids"])
    full_kwargs["mm_token_type_ids"] = torch.cat([batch.mm_token_type_ids, torch.zeros_like(new_tokens)], 1)
    with torch.no_grad():
        prefill = model(**batch.model_kwargs(), use_cache=True)
        # no explicit positions: the model derives them from its rope_deltas
        step = model(input_ids=new_tokens, past_key_values=prefill.past_key_values, use_cache=True).logits
        full = model(**full_kwargs).logits[:, batch.prompt_length :]
    error = (step - full).abs().max()
    assert error < 1e-4 if agrees else error > 1e-2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (bf16 on-device check of the tiny model)")
def test_bf16_on_gpu_padding_and_generation(videos):
    model, tokenizer = load_model_and_processor(ModelConfig("tiny-random", dtype="bfloat16"))
    model.to("cuda")
    batch = encode_prompts(tokenizer, [chat(QUESTION), chat("Why?")], videos).to("cuda")
    single = encode_prompts(tokenizer, [chat("Why?")], videos[1:]).to("cuda")
    with torch.no_grad():
        positions, deltas = model.model.get_rope_index(**batch.model_kwargs())
        assert positions.device.type == "cuda" and deltas.device.type == "cuda"
        padded_last = model(**batch.model_kwargs()).logits[1, -1].float()
        single_last = model(**single.model_kwargs()).logits[0, -1].float()
        generated = model.generate(**batch.model_kwargs(), max_new_tokens=4, do_sample=False, eos_token_id=None)
    torch.testing.assert_close(padded_last, single_last, rtol=0, atol=5e-2)  # bf16
    assert generated.shape == (2, batch.prompt_length + 4)
