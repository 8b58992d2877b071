"""A tiny random Qwen-VL of any registered family, built in memory with an offline tokenizer, for CPU tests and demos.

``TinyConfig.family`` picks Qwen2.5-VL (default), Qwen2-VL, Qwen3-VL (deepstack on the first vision block,
interleaved mRoPE, timestamped frames) or Qwen3.5 (Gated DeltaNet linear-attention layers, then full attention).
Every family's tiny vision tower uses 14-pixel patches (``vision_patch_size``), so that the ``tiny_cpu`` video
preset (``image_factor=28``) feeds any of them: the data path patches by the loaded model's own vision config
(:func:`vau_r1.model.families.video_processing_for`) with the family's normalisation; the real Qwen3 checkpoints
use 16 (``ModelFamily.patch_size``).

Two tokenizers are available (``TinyConfig.tokenizer``):

* ``"tiny_bpe"`` (default): a byte-level BPE of about 1k tokens trained in-process, deterministically,
  on :data:`TINY_CORPUS` (the VAU-R1 prompt wording, class labels, tags and numbers), with the Qwen
  added tokens after it. Any text still encodes (the 256 byte tokens are always present). The small
  vocabulary keeps the ``lm_head`` and the ``[B, L, vocab]`` logits cheap.
* ``"qwen2.5"``: the real Qwen2.5 tokenizer (:func:`vau_r1.model.tokenizer.qwen2_5_tokenizer`) with the
  real padded vocabulary size 151,936, so the token ids are those of the real checkpoints.

The model's special-token ids (``video_token_id``, eos, pad, ...) are read from the tokenizer, and the
weights come from a seeded generator, so the same :class:`TinyConfig` always gives the same model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedConfig, PreTrainedModel, Qwen2Tokenizer
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

from vau_r1.data.schema import CLASS_LABELS
from vau_r1.model.families import get_family
from vau_r1.model.tokenizer import (
    EOS_TOKEN,
    IMAGE_PAD_TOKEN,
    PAD_TOKEN,
    VIDEO_PAD_TOKEN,
    VISION_END_TOKEN,
    VISION_START_TOKEN,
    build_qwen2_tokenizer,
    chat_template_for,
    qwen2_5_tokenizer,
)

TOKENIZERS: tuple[str, ...] = ("tiny_bpe", "qwen2.5")
#: Padded vocabulary size of Qwen2.5-VL-3B (the embedding has more rows than the tokenizer has tokens).
QWEN2_5_VOCAB_SIZE = 151936

_QUESTION = 'Answer the question: "{q}" according to the content of the video. Select the answer from :{o}.'
_THINK = "Output your thought process within the <think> </think> tags, including analysis with either specific time ranges (xx.xx to xx.xx)."  # noqa: E501
_ANSWER = (
    "Then, provide your answer within the <answer> </answer> tags, output the corresponding letter of the option."
)
_GLUE = "At the same time, in the <glue> </glue> tags, present the precise time period in seconds of the video clips on which you base your answer to this question in the format of [s1, e1]."  # noqa: E501
_EXAMPLE = "For example: <think> your detailed reasoning process here </think><answer> your final answer here </answer><glue>[5.2, 10.4]</glue>."  # noqa: E501
_TAG_Q = "Is there any anomaly in the video? If yes, please answer 'Anomaly' and present the precise anomaly time period. If no, please answer 'Normal' and output time period as <glue>[-1.0, -1.0]</glue>."  # noqa: E501
_CLS_Q = "What type of anomaly appears in the video? If no anomaly appears, please answer 'Normal'."
_REASON = "You are an advanced anomaly detector assigned to analyze a video. Please identify any unusual or suspicious events that occur in the scene. Do not focus on any text or watermarks that might appear. Provide a description in five sentences."  # noqa: E501

#: Training text of the tiny BPE: the prompt wording of every task, labels, tags, answers and numbers.
TINY_CORPUS: tuple[str, ...] = (
    "system\nYou are a helpful assistant.\nuser\nassistant\n",
    _QUESTION.format(
        q="What happens to the person in the video?", o="['A. a fall', 'B. a fight', 'C. a fire', 'D. nothing']"
    ),
    _QUESTION.format(q=_TAG_Q, o="['Normal', 'Anomaly']"),
    _QUESTION.format(q=_CLS_Q, o=str(list(CLASS_LABELS))),
    _THINK,
    _ANSWER,
    _GLUE,
    _EXAMPLE,
    _REASON,
    "Explain in detail whether (and how) any anomaly occurs in the video, and the reasoning behind it.",
    "The expected format is: <answer> Output the corresponding option here </answer>. (A, B, C, or D)",
    "<think> The man walks, then falls to the ground at 3.5 seconds. </think><answer>Anomaly</answer><glue>[3.5, 7.0]</glue>",  # noqa: E501
    "<think> Nothing unusual happens; people walk on the street. </think><answer>Normal</answer><glue>[-1.0, -1.0]</glue>",  # noqa: E501
    " ".join(f"<answer>{letter}</answer> <answer> {letter} </answer>" for letter in "ABCD"),
    " ".join(f"<answer>{label}</answer> {label} {label.replace('_', ' ')}" for label in CLASS_LABELS),
    " ".join(f"{n}.{d} [{n}.{d}, {n + 2}.{d}]" for n in range(0, 60, 3) for d in (0, 5)),
    "car person people road street shop fire smoke fight robbery accident object moving falling water red blue green",
)


@dataclass
class TinyConfig:
    """Sizes of the tiny model (``ModelConfig.tiny`` when ``name_or_path == "tiny-random"``).

    Attributes:
        family: ``"qwen2_5_vl"``, ``"qwen2_vl"``, ``"qwen3_vl"`` or ``"qwen3_5"``.
        tokenizer: ``"tiny_bpe"`` (about 1k tokens, fast) or ``"qwen2.5"`` (real ranks, 151,936 logits).
        bpe_vocab_size: target vocabulary of the tiny BPE before the 22 added tokens (upper bound).
        vocab_size: rows of the embedding and the ``lm_head`` (logits per token); ``None`` for the tokenizer's
            own size (151,936 for ``"qwen2.5"``). A larger value pads the vocabulary as the real checkpoints do
            (their 151,936 rows exceed the tokenizer's 151,665 tokens); a smaller one than the tokenizer raises.
        bpe_corpus_files: UTF-8 text files whose lines are added to :data:`TINY_CORPUS` when the BPE is trained
            (for example the rendered prompts of a training set, so that its words become single tokens and
            its prompts short). The files must stay readable: the tokenizer is rebuilt from them.
        hidden_size: text hidden width; ``hidden_size / num_attention_heads`` must be even and >= 6.
        intermediate_size: text MLP width.
        num_hidden_layers: text decoder layers.
        num_attention_heads: text attention heads.
        num_key_value_heads: text key/value heads (grouped-query attention).
        vision_hidden_size: vision tower width.
        vision_intermediate_size: vision MLP width.
        vision_depth: vision blocks.
        vision_num_heads: vision attention heads.
        tokens_per_second: Qwen2.5-VL temporal mRoPE positions per second of video (2 in the real models).
        vision_patch_size: spatial patch of the vision tower, in pixels (14; the real Qwen3 models use 16, which
            needs ``video.image_factor=32``). The data path reads it from the model's config.
        initializer_range: std of the normal weight init. Larger than the usual 0.02 so that positions and
            ``mm_token_type_ids`` visibly move the logits of so small a model (tests need that sensitivity).
        seed: seed of the weight initialisation.
    """

    family: str = "qwen2_5_vl"
    tokenizer: str = "tiny_bpe"
    bpe_vocab_size: int = 1024
    vocab_size: int | None = None
    bpe_corpus_files: tuple[str, ...] = ()
    hidden_size: int = 32
    intermediate_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    num_key_value_heads: int = 1
    vision_hidden_size: int = 32
    vision_intermediate_size: int = 64
    vision_depth: int = 2
    vision_num_heads: int = 2
    tokens_per_second: int = 2
    vision_patch_size: int = 14
    initializer_range: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        get_family(self.family)
        self.bpe_corpus_files = tuple(str(path) for path in self.bpe_corpus_files)
        if missing := [path for path in self.bpe_corpus_files if not Path(path).is_file()]:
            raise ValueError(f"model.tiny.bpe_corpus_files: {missing} not found; give existing text files or []")
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"model.tiny.tokenizer={self.tokenizer!r}; expected one of {list(TOKENIZERS)}")
        head_dim, rest = divmod(self.hidden_size, self.num_attention_heads)
        if rest or head_dim % 2 or head_dim < 6:
            raise ValueError(
                f"model.tiny.hidden_size={self.hidden_size} / num_attention_heads={self.num_attention_heads} must "
                "give an even head_dim >= 6 (mRoPE splits head_dim/2 into temporal, height and width sections)"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> TinyConfig:
        """Build from a config mapping; unknown keys raise with the list of valid ones."""
        values = dict(values or {})
        valid = {f.name for f in fields(cls)}
        if unknown := sorted(set(values) - valid):
            raise ValueError(f"Unknown model.tiny keys {unknown}; expected some of {sorted(valid)}")
        return cls(**values)


def tiny_bpe_tokenizer(vocab_size: int = 1024, extra_texts: Sequence[str] = ()) -> Qwen2Tokenizer:
    """Train the small byte-level BPE on :data:`TINY_CORPUS` (plus ``extra_texts``) and add the Qwen special tokens.

    Training is deterministic and takes a few milliseconds (about a second with a large extra corpus). The
    pre-tokenizer and normaliser are the Qwen2 ones, so the tokenizer behaves like Qwen's, only with fewer merges.

    Args:
        vocab_size: upper bound of the BPE vocabulary (the corpus may support fewer merges).
        extra_texts: more training text, after :data:`TINY_CORPUS`.

    Returns:
        A ``Qwen2Tokenizer`` with the Qwen-VL added tokens and chat template.
    """
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=sorted(pre_tokenizers.ByteLevel.alphabet()),
    )
    bpe.train_from_iterator([*TINY_CORPUS, *extra_texts], trainer=trainer)
    state = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    return build_qwen2_tokenizer(state["vocab"], merges)


def tiny_tokenizer(tiny: TinyConfig) -> Qwen2Tokenizer:
    """The tokenizer ``tiny.tokenizer`` names."""
    if tiny.tokenizer == "qwen2.5":
        return qwen2_5_tokenizer()
    extra = [line for path in tiny.bpe_corpus_files for line in Path(path).read_text(encoding="utf-8").splitlines()]
    return tiny_bpe_tokenizer(tiny.bpe_vocab_size, extra)


def _mrope_section(head_dim: int) -> list[int]:
    """Split ``head_dim / 2`` rotary frequencies into (temporal, height, width) like Qwen's 16/24/24 of 64."""
    half = head_dim // 2
    temporal = max(1, half // 4)
    height = (half - temporal) // 2
    return [temporal, height, half - temporal - height]


def _interleaved_mrope_section(rotary_dim: int) -> list[int]:
    """Qwen3's interleaved (T, H, W) split of ``rotary_dim / 2`` frequencies: H and W a third each, T the rest."""
    half = rotary_dim // 2
    return [half - 2 * (half // 3), half // 3, half // 3]


def _vision_config(tiny: TinyConfig) -> dict[str, Any]:
    """The tiny vision tower's config dict for ``tiny.family`` (Qwen2-VL names its widths differently)."""
    if tiny.family == "qwen2_vl":
        return {"depth": tiny.vision_depth, "embed_dim": tiny.vision_hidden_size,
                "mlp_ratio": tiny.vision_intermediate_size // tiny.vision_hidden_size,
                "num_heads": tiny.vision_num_heads, "patch_size": tiny.vision_patch_size,
                "hidden_size": tiny.hidden_size, "initializer_range": tiny.initializer_range}  # fmt: skip
    vision = {
        "depth": tiny.vision_depth,
        "hidden_size": tiny.vision_hidden_size,
        "intermediate_size": tiny.vision_intermediate_size,
        "num_heads": tiny.vision_num_heads,
        "out_hidden_size": tiny.hidden_size,
        "patch_size": tiny.vision_patch_size,
        "initializer_range": tiny.initializer_range,
    }
    if tiny.family == "qwen2_5_vl":
        vision.update(fullatt_block_indexes=[tiny.vision_depth - 1], tokens_per_second=tiny.tokens_per_second)
        return vision
    vision["num_position_embeddings"] = 64  # Qwen3: an 8x8 grid of learned positions, interpolated to any frame size
    if tiny.family == "qwen3_vl":
        vision["deepstack_visual_indexes"] = [0]  # the first block's features join the first LLM layer
    return vision


def _qwen3_text(tiny: TinyConfig, text: dict[str, Any]) -> dict[str, Any]:
    """The text config dict of a tiny Qwen3-VL or Qwen3.5: ``text`` (the shared keys) with Qwen3's rotary rule."""
    head_dim = tiny.hidden_size // tiny.num_attention_heads
    rotary = head_dim if tiny.family == "qwen3_vl" else head_dim // 2  # Qwen3.5 rotates part of each head
    rope = {"rope_type": "default", "rope_theta": 5_000_000.0, "mrope_interleaved": True,
            "mrope_section": _interleaved_mrope_section(rotary)}  # fmt: skip
    text = {**text, "head_dim": head_dim, "rope_parameters": rope, "tie_word_embeddings": False}
    if tiny.family == "qwen3_5":
        rope["partial_rotary_factor"] = 0.5
        # One Gated DeltaNet layer per full-attention layer, as in Qwen3.5's 3:1 pattern cut short.
        text["layer_types"] = ["linear_attention" if i % 2 == 0 else "full_attention"
                               for i in range(tiny.num_hidden_layers)]  # fmt: skip
        text.update(
            linear_conv_kernel_dim=4,
            linear_key_head_dim=head_dim,
            linear_value_head_dim=head_dim,
            linear_num_key_heads=tiny.num_key_value_heads,
            linear_num_value_heads=tiny.num_attention_heads,
        )
    return text


def tiny_model_config(tiny: TinyConfig, tokenizer: Qwen2Tokenizer) -> PreTrainedConfig:
    """The transformers config of the tiny model; special-token ids come from ``tokenizer``."""
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (EOS_TOKEN, PAD_TOKEN, VIDEO_PAD_TOKEN, IMAGE_PAD_TOKEN)}
    vocab_size = QWEN2_5_VOCAB_SIZE if tiny.tokenizer == "qwen2.5" else len(tokenizer)
    if tiny.vocab_size is not None:
        if tiny.vocab_size < vocab_size:
            raise ValueError(
                f"model.tiny.vocab_size={tiny.vocab_size} is below the {tiny.tokenizer} tokenizer's {vocab_size} "
                f"ids; give at least {vocab_size} or null"
            )
        vocab_size = tiny.vocab_size
    text = {
        "vocab_size": vocab_size,
        "hidden_size": tiny.hidden_size,
        "intermediate_size": tiny.intermediate_size,
        "num_hidden_layers": tiny.num_hidden_layers,
        "num_attention_heads": tiny.num_attention_heads,
        "num_key_value_heads": tiny.num_key_value_heads,
        "max_position_embeddings": 32768,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1_000_000.0,
            "mrope_section": _mrope_section(tiny.hidden_size // tiny.num_attention_heads),
        },
        "bos_token_id": ids[PAD_TOKEN],
        "eos_token_id": ids[EOS_TOKEN],
        "pad_token_id": ids[PAD_TOKEN],
        "initializer_range": tiny.initializer_range,
    }
    if get_family(tiny.family).timestamp_text:  # Qwen3-VL, Qwen3.5
        text = _qwen3_text(tiny, text)
    config_class = get_family(tiny.family).load_class().config_class
    return config_class(
        text_config=text,
        vision_config=_vision_config(tiny),
        image_token_id=ids[IMAGE_PAD_TOKEN],
        video_token_id=ids[VIDEO_PAD_TOKEN],
        vision_start_token_id=tokenizer.convert_tokens_to_ids(VISION_START_TOKEN),
        vision_end_token_id=tokenizer.convert_tokens_to_ids(VISION_END_TOKEN),
    )


def build_tiny_model(
    tiny: TinyConfig, *, dtype: torch.dtype = torch.float32, attn_implementation: str = "sdpa"
) -> tuple[PreTrainedModel, Qwen2Tokenizer]:
    """Build the tiny model and its tokenizer; the same ``tiny`` always gives the same weights.

    Args:
        tiny: sizes, family, tokenizer choice and seed.
        dtype: parameter dtype.
        attn_implementation: ``"sdpa"`` or ``"eager"``.

    Returns:
        ``(model, tokenizer)``; ``model.config._name_or_path`` is ``"tiny-random"`` (save it before anything
        reloads it by name).
    """
    tokenizer = tiny_tokenizer(tiny)
    tokenizer.chat_template = chat_template_for(tiny.family)
    config = tiny_model_config(tiny, tokenizer)
    model_class = get_family(tiny.family).load_class()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(tiny.seed)
        model = model_class._from_config(config, dtype=dtype, attn_implementation=attn_implementation)
    model.config._name_or_path = "tiny-random"
    generation = model.generation_config
    generation.bos_token_id = tokenizer.pad_token_id
    generation.eos_token_id = [tokenizer.eos_token_id, tokenizer.pad_token_id]
    generation.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer
