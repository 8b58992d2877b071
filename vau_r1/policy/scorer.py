"""Policy pass: log-probs of sampled completions given their video prompt.

Every pass that scores completions (policy with gradients, old policy for μ > 1, reference model)
goes through :class:`CompletionScorer`, so all of them see the same inputs as generation: the video
features, ``video_grid_thw``, ``second_per_grid_ts`` and ``mm_token_type_ids`` (``docs/qwen_vl_notes.md``
items 1–2; the official trainer drops ``second_per_grid_ts`` here, ``docs/paper.md`` §10 item 17).

The vision tower runs once per video and its output is shared by the ``G`` completions through
``mm_encoder_outputs`` (item 7); gradients still reach the vision tower. The whole computation is one
``forward`` so that a DDP wrapper around the scorer synchronises every gradient.

With ``share_prompt=True`` the language model also runs each prompt once per group, forward and backward: the
prompt and its ``G`` completions are packed into one row with a mask that keeps the completions apart
(:mod:`vau_r1.policy.shared_prefix`), exact up to float rounding. It needs a text model of pure softmax
attention that takes a custom 4-D mask: the model types in :data:`SHARED_PROMPT_MODEL_TYPES` with ``sdpa`` or
``eager`` attention (a ``flash_attention_2`` text model is switched to ``sdpa``, with a warning); any other
model falls back to the unshared pass with one logged line.
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPooling

from vau_r1.policy.logprobs import chunked_logprobs, token_logprobs
from vau_r1.policy.rollout import prompt_positions, rope_model
from vau_r1.policy.shared_prefix import (
    additive_mask,
    gather_index,
    packed_attention_mask,
    packed_key_mask,
    packed_positions,
    packed_tokens,
)  # fmt: skip

logger = logging.getLogger(__name__)

#: Model types whose text model is pure softmax attention over mRoPE positions, checked exact in the packed pass.
SHARED_PROMPT_MODEL_TYPES: tuple[str, ...] = ("qwen2_vl", "qwen2_5_vl")
#: Text attention implementations that take the packed pass's 4-D mask.
MASK_ATTENTION: tuple[str, ...] = ("sdpa", "eager")


def sequence_inputs(
    prompt: dict[str, torch.Tensor], completion_ids: torch.Tensor, completion_mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Text-side inputs of the ``B*G`` prompt + completion sequences.

    Args:
        prompt: the ``B`` prompts' model inputs (``input_ids``/``attention_mask``/``mm_token_type_ids``
            ``[B, P]``, ``video_grid_thw`` ``[B, 3]``, ``second_per_grid_ts`` ``[B]``).
        completion_ids: ``[B*G, L]`` sampled tokens.
        completion_mask: ``[B*G, L]`` 1 through the first EOS.

    Returns:
        ``input_ids``, ``attention_mask``, ``mm_token_type_ids`` ``[B*G, P+L]``, ``video_grid_thw`` ``[B*G, 3]``
        and ``second_per_grid_ts`` ``[B*G]``.
    """
    G = completion_ids.shape[0] // prompt["input_ids"].shape[0]
    rep = {k: v.repeat_interleave(G, dim=0) for k, v in prompt.items() if k != "pixel_values_videos"}
    out = {
        "input_ids": torch.cat([rep["input_ids"], completion_ids], dim=1),
        "attention_mask": torch.cat([rep["attention_mask"], completion_mask.to(rep["attention_mask"].dtype)], dim=1),
        "mm_token_type_ids": torch.cat([rep["mm_token_type_ids"], torch.zeros_like(completion_ids)], dim=1),
        "video_grid_thw": rep["video_grid_thw"],
    }
    if "second_per_grid_ts" in rep:
        out["second_per_grid_ts"] = rep["second_per_grid_ts"]
    return out


def _video_features(model: nn.Module, prompt: dict[str, torch.Tensor], repeats: int) -> BaseModelOutputWithPooling:
    """Vision-tower output of the ``B`` videos, each listed ``repeats`` times (shared tensors, one ViT pass).

    Qwen3-VL's output also holds ``deepstack_features`` (per injected LLM layer, a tuple of per-video features):
    they are repeated the same way and kept, since the model reads them from ``mm_encoder_outputs`` too.
    """
    feats = model.get_video_features(prompt["pixel_values_videos"], prompt["video_grid_thw"], return_dict=True)
    per_video = tuple(f for f in feats.pooler_output for _ in range(repeats))
    deepstack = getattr(feats, "deepstack_features", None)
    if deepstack is None:
        return BaseModelOutputWithPooling(pooler_output=per_video)
    layers = [tuple(f for f in layer for _ in range(repeats)) for layer in deepstack]
    return type(feats)(pooler_output=per_video, deepstack_features=layers)


class CompletionScorer(nn.Module):
    """Computes ``[B*G, L]`` log-probs of completions under ``model``, in one differentiable forward.

    Args:
        model: a Qwen2/2.5-VL ``...ForConditionalGeneration`` (possibly a PEFT model around one).
        reuse_vision: run the vision tower once per video and share it across the ``G`` completions;
            ``False`` repeats ``pixel_values_videos`` ``G`` times (the official trainer's way). The shared-prompt
            pass runs the vision tower once per video either way.
        chunk_size: when set, compute log-probs from the hidden states in chunks of this many tokens
            without materialising ``[B*G, L, V]`` logits (:func:`~vau_r1.policy.logprobs.chunked_logprobs`).
        share_prompt: run each prompt once per group (the packed pass, :mod:`vau_r1.policy.shared_prefix`);
            where the model does not allow it exactly, the unshared pass is used and the reason logged once.
    """

    def __init__(
        self, model: nn.Module, reuse_vision: bool = True, chunk_size: int | None = None, share_prompt: bool = False
    ) -> None:
        super().__init__()
        self.model = model
        self.reuse_vision = reuse_vision
        self.chunk_size = chunk_size
        self.share_prompt = share_prompt and _prepare_shared_prompt(model)

    def forward(
        self,
        prompt: dict[str, torch.Tensor],
        completion_ids: torch.Tensor,
        completion_mask: torch.Tensor,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """Log-probs ``[B*G, L]`` (float32) of ``completion_ids`` under ``softmax(logits / temperature)``."""
        if self.share_prompt:
            return self._shared(prompt, completion_ids, completion_mask, temperature)
        G = completion_ids.shape[0] // prompt["input_ids"].shape[0]
        inputs = sequence_inputs(prompt, completion_ids, completion_mask)
        inputs["position_ids"] = prompt_positions(self.model, inputs)
        if self.reuse_vision:
            inputs["mm_encoder_outputs"] = {"video": _video_features(self.model, prompt, G)}
        else:
            inputs["pixel_values_videos"] = _repeat_videos(prompt, G)
        L = completion_ids.shape[1]
        if self.chunk_size is None:
            logits = self.model(**inputs, use_cache=False, logits_to_keep=L + 1).logits[:, :-1]  # [B*G, L, V]
            return token_logprobs(logits, completion_ids, temperature)
        hidden = self._inner(**inputs, use_cache=False).last_hidden_state[:, -L - 1 : -1]  # [B*G, L, H]
        return self._head_logprobs(hidden, completion_ids, temperature)

    def _shared(
        self, prompt: dict[str, torch.Tensor], completion_ids: torch.Tensor, completion_mask: torch.Tensor,
        temperature: float,
    ) -> torch.Tensor:  # fmt: skip
        """The packed pass: ``B`` rows ``[prompt_b, c_b1, ..., c_bG]`` of ``T = P + G*L`` tokens, one forward."""
        (B, P), (N, L) = prompt["input_ids"].shape, completion_ids.shape
        G = N // B
        mask = packed_attention_mask(packed_key_mask(prompt["attention_mask"], completion_mask), P, G)  # [B,1,T,T]
        if rope_model(self.model).language_model.config._attn_implementation == "eager":
            mask = additive_mask(mask, self.model.get_input_embeddings().weight.dtype)
        text_keys = ("input_ids", "attention_mask", "mm_token_type_ids")
        inputs = {k: v for k, v in prompt.items() if k not in text_keys}  # the videos, passed once each
        inputs.update(
            input_ids=packed_tokens(prompt["input_ids"], completion_ids),  # [B, T]
            mm_token_type_ids=packed_tokens(prompt["mm_token_type_ids"], torch.zeros_like(completion_ids)),
            position_ids=packed_positions(prompt_positions(self.model, prompt), completion_mask),  # [3, B, T]
            attention_mask=mask,
        )  # fmt: skip
        hidden = self._inner(**inputs, use_cache=False).last_hidden_state  # [B, T, H]
        index = gather_index(B, P, G, L, hidden.device)  # [B*G, L] into the B*T positions
        return self._head_logprobs(hidden.reshape(-1, hidden.shape[-1])[index], completion_ids, temperature)

    def _head_logprobs(self, hidden: torch.Tensor, completion_ids: torch.Tensor, temperature: float) -> torch.Tensor:
        """``[B*G, L]`` log-probs from the final hidden states ``[B*G, L, H]`` that predict ``completion_ids``."""
        head = self.model.get_output_embeddings()
        if self.chunk_size is None:
            return token_logprobs(head(hidden), completion_ids, temperature)
        return chunked_logprobs(hidden, head.weight, completion_ids, temperature, self.chunk_size, head.bias)

    def _inner(self, **inputs: object):
        """The decoder without the LM head (``...ForConditionalGeneration.model``, through PEFT)."""
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return base.model(**inputs)


_LOGGED: set[str] = set()


def _log_once(level: int, message: str) -> None:
    """Log ``message`` the first time only (scorers are built per frozen pass; one line per run is enough)."""
    if message not in _LOGGED:
        _LOGGED.add(message)
        logger.log(level, message)


def shared_prompt_refusal(model: nn.Module) -> str | None:
    """Why the packed pass would not be exact for ``model`` (``None`` when it is), before any attention switch."""
    model_type = model.config.model_type
    if model_type not in SHARED_PROMPT_MODEL_TYPES:
        return f"model type {model_type!r} is not one checked exact for it {list(SHARED_PROMPT_MODEL_TYPES)}"
    text_config = rope_model(model).language_model.config
    if "sliding_attention" in (getattr(text_config, "layer_types", None) or ()):
        return "the text model has sliding-window layers (the packed mask is full causal)"
    return None


def _prepare_shared_prompt(model: nn.Module) -> bool:
    """Whether the packed pass can run on ``model``; switches a text attention without masks (FA2) to ``sdpa``."""
    fallback = "grpo.share_prompt: using the unshared pass (the prompt runs G times) because "
    fix = "; set model.attn_implementation=sdpa or grpo.share_prompt=false"
    if (reason := shared_prompt_refusal(model)) is not None:
        _log_once(logging.INFO, fallback + reason)
        return False
    text_config = rope_model(model).language_model.config
    before = text_config._attn_implementation
    if before in MASK_ATTENTION:
        return True
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        base.set_attn_implementation({"text_config": "sdpa"})
    except (ValueError, ImportError) as error:
        _log_once(logging.WARNING, f"{fallback}the text attention {before!r} takes no custom mask ({error}){fix}")
        return False
    if (after := text_config._attn_implementation) not in MASK_ATTENTION:
        _log_once(logging.WARNING, f"{fallback}the text attention stayed {after!r}, which takes no custom mask{fix}")
        return False
    message = (
        f"grpo.share_prompt: the text model's attention is now sdpa instead of {before!r} (the packed pass needs "
        "a custom mask; the vision tower keeps its own); grpo.share_prompt=false keeps it"
    )
    _log_once(logging.WARNING, message)
    return True


def _repeat_videos(prompt: dict[str, torch.Tensor], repeats: int) -> torch.Tensor:
    """``pixel_values_videos`` with each video's patch rows repeated ``repeats`` times, prompt-major."""
    sizes = prompt["video_grid_thw"].prod(dim=-1).tolist()
    chunks = torch.split(prompt["pixel_values_videos"], sizes)
    return torch.cat([c for c in chunks for _ in range(repeats)], dim=0)
