"""Rollout: sample ``G`` completions per video prompt, with the vision tower and the prefill run once.

The decode loop is written out (rather than ``model.generate``) for three reasons, each a silent
failure otherwise (``docs/qwen_vl_notes.md``):

* **Prefill once, expand to G.** The ``B`` prompts (with their videos) are prefilled once; the KV cache
  is then repeated ``G`` times (``DynamicCache.batch_repeat_interleave``). ``generate(num_return_sequences=G)``
  prefills the language model ``G`` times and TRL-style prompt duplication also runs the vision tower
  ``G`` times (items 4–5).
* **Explicit positions.** Decoding never relies on the mutable ``model.model.rope_deltas`` (item 3): the
  3-D multimodal positions of the prompt come from ``get_rope_index`` with the video's
  ``second_per_grid_ts``, and completion token ``t`` of a row sits at ``last_prompt_position + 1 + t``
  on all three axes -- exactly what a full forward over prompt + completion computes, which is what the
  policy pass does.
* **No placeholder tokens.** ``<|video_pad|>`` / ``<|image_pad|>`` are never sampled: a completion holding
  one would be taken for a video slot by every later forward pass (which then fails or, worse, shifts
  features). They are filtered out like top-k/top-p filtering does, after the log-prob is recorded.
* **Seeded sampling and recorded log-probs.** Tokens are drawn with an explicit ``torch.Generator``
  (reproducible runs and exact resume), and the log-prob of each sampled token under
  ``softmax(logits / temperature)`` is recorded, the quantity the policy pass recomputes.

Layout: prompt-major, completion ``i`` of prompt ``b`` at row ``b*G + i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import DynamicCache
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper


@dataclass(frozen=True)
class SamplingParams:
    """How completions are sampled.

    Attributes:
        num_generations: ``G``, completions per prompt.
        max_new_tokens: completion cap in tokens (``grpo.max_completion_tokens``).
        temperature: softmax temperature (> 0); also used by the policy pass.
        top_p: nucleus mass kept (1.0 disables).
        top_k: number of top tokens kept (0 disables).
    """

    num_generations: int
    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0


@dataclass
class Rollout:
    """Sampled completions of a batch of ``B`` prompts, ``G`` each.

    Attributes:
        completion_ids: ``[B*G, L]`` sampled tokens, right-padded with the pad id after the first EOS.
        completion_mask: ``[B*G, L]`` int 1 on completion tokens up to and including the first EOS.
        is_truncated: ``[B*G]`` bool, True where no EOS was produced within ``max_new_tokens``.
        sampled_logp: ``[B*G, L]`` float32 log-probs of the sampled tokens at sampling time, 0 on padding.
        num_generations: ``G``.
    """

    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    is_truncated: torch.Tensor
    sampled_logp: torch.Tensor
    num_generations: int

    @property
    def lengths(self) -> torch.Tensor:
        """``[B*G]`` completion lengths in tokens (EOS included)."""
        return self.completion_mask.sum(dim=1)


def rope_model(model: nn.Module) -> nn.Module:
    """The inner Qwen-VL module that owns ``get_rope_index`` (through PEFT and DDP wrappers)."""
    for module in model.modules():
        if hasattr(module, "get_rope_index") and hasattr(module, "language_model"):
            return module
    raise TypeError(f"{type(model).__name__} has no Qwen-VL submodule with get_rope_index (is it a Qwen2/2.5-VL?)")


def prompt_positions(model: nn.Module, prompt: dict[str, torch.Tensor]) -> torch.Tensor:
    """``[3, B, P]`` multimodal rotary positions of left-padded video prompts (0 on padding).

    Uses ``video_grid_thw``, ``second_per_grid_ts`` (Qwen2.5-VL's absolute time axis; ignored by
    Qwen2-VL) and ``mm_token_type_ids`` (2 at video pads), the inputs every forward pass must share.
    """
    positions, _ = rope_model(model).get_rope_index(
        prompt["input_ids"],
        mm_token_type_ids=prompt["mm_token_type_ids"],
        video_grid_thw=prompt.get("video_grid_thw"),
        second_per_grid_ts=prompt.get("second_per_grid_ts"),
        attention_mask=prompt["attention_mask"],
    )
    return positions


def placeholder_token_ids(model: nn.Module) -> list[int]:
    """Ids of the image/video placeholder tokens of ``model`` (never to be generated)."""
    ids = (getattr(model.config, "video_token_id", None), getattr(model.config, "image_token_id", None))
    return [i for i in ids if i is not None]


def _sample(
    logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None, banned: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one token per row from ``logits`` [N, V]; returns ``(tokens [N], logp [N])``.

    ``logp`` is the token's log-prob under ``softmax(logits / T)`` before top-k/top-p filtering and the
    ``banned`` ids are removed, i.e. the distribution the policy pass scores.
    """
    scaled = logits.float() / params.temperature  # [N, V]
    logp_all = torch.log_softmax(scaled, dim=-1)
    filtered = scaled if banned is None else scaled.index_fill(1, banned, float("-inf"))
    if params.top_k > 0:
        filtered = TopKLogitsWarper(top_k=params.top_k)(None, filtered)
    if params.top_p < 1.0:
        filtered = TopPLogitsWarper(top_p=params.top_p)(None, filtered)
    probs = torch.softmax(filtered, dim=-1)
    tokens = torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)  # [N]
    return tokens, logp_all.gather(1, tokens.unsqueeze(1)).squeeze(1)


def _prefill(model: nn.Module, prompt: dict[str, torch.Tensor], positions: torch.Tensor, repeats: int):
    """Run the vision tower and the prompt once; return ``(last logits [B*G, V], cache expanded to B*G)``."""
    out = model(
        **prompt,
        position_ids=positions,
        past_key_values=DynamicCache(config=model.config.get_text_config()),
        use_cache=True,
        logits_to_keep=1,
    )
    cache = out.past_key_values
    cache.batch_repeat_interleave(repeats)
    return out.logits[:, -1].repeat_interleave(repeats, dim=0), cache


@torch.no_grad()
def generate_rollout(
    model: nn.Module,
    prompt: dict[str, torch.Tensor],
    params: SamplingParams,
    *,
    eos_token_ids: list[int],
    pad_token_id: int,
    generator: torch.Generator | None = None,
    banned_token_ids: list[int] | None = None,
) -> Rollout:
    """Sample ``G`` completions for each of ``B`` left-padded video prompts.

    Args:
        model: an unwrapped Qwen2/2.5-VL ``...ForConditionalGeneration`` (or a PEFT model around one). Under
            ZeRO-3/FSDP2 call this inside :meth:`vau_r1.engine.sharding.Sharding.with_full_parameters`: rows stop at
            different lengths on different ranks, so per-forward weight gathers would not line up.
        prompt: model inputs of the ``B`` prompts: ``input_ids``/``attention_mask``/``mm_token_type_ids``
            ``[B, P]`` (left padding), ``pixel_values_videos`` ``[N, D]``, ``video_grid_thw`` ``[B, 3]``,
            ``second_per_grid_ts`` ``[B]``.
        params: sampling settings.
        eos_token_ids: ids that end a completion (``<|im_end|>``, ``<|endoftext|>``).
        pad_token_id: id written after the EOS of finished rows.
        generator: RNG for sampling (on the model's device); ``None`` uses the global RNG.
        banned_token_ids: ids never sampled; default: the model's image/video placeholder tokens.

    Returns:
        A :class:`Rollout` with ``B*G`` rows, prompt-major.
    """
    was_training = model.training
    model.eval()  # no dropout, and gradient checkpointing would otherwise turn the cache off
    try:
        positions = prompt_positions(model, prompt)  # [3, B, P]
        G = params.num_generations
        logits, cache = _prefill(model, prompt, positions, G)  # [B*G, V]
        banned_ids = placeholder_token_ids(model) if banned_token_ids is None else banned_token_ids
        return _decode(
            model, logits, cache,
            next_position=positions[:, :, -1:].repeat_interleave(G, dim=1) + 1,  # [3, B*G, 1]
            attention_mask=prompt["attention_mask"].repeat_interleave(G, dim=0),  # [B*G, P]
            params=params, eos_token_ids=eos_token_ids, banned_token_ids=banned_ids,
            pad_token_id=pad_token_id, generator=generator,
        )  # fmt: skip
    finally:
        model.train(was_training)


def _decode(
    model: nn.Module,
    logits: torch.Tensor,
    cache: DynamicCache,
    *,
    next_position: torch.Tensor,
    attention_mask: torch.Tensor,
    params: SamplingParams,
    eos_token_ids: list[int],
    banned_token_ids: list[int],
    pad_token_id: int,
    generator: torch.Generator | None,
) -> Rollout:
    """Sample from the prefilled ``logits`` [B*G, V] token by token until every row has an EOS or the cap."""
    device = logits.device
    eos = torch.tensor(eos_token_ids, device=device)
    banned = torch.tensor(banned_token_ids, dtype=torch.long, device=device) if banned_token_ids else None
    done = torch.zeros(logits.shape[0], dtype=torch.bool, device=device)  # [B*G]
    tokens, logps, masks = [], [], []
    for _ in range(params.max_new_tokens):
        token, logp = _sample(logits, params, generator, banned)
        tokens.append(token.masked_fill(done, pad_token_id))
        logps.append(logp.masked_fill(done, 0.0))
        masks.append(~done)
        done = done | torch.isin(token, eos)
        if bool(done.all()):
            break
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(attention_mask.shape[0], 1)], dim=1)
        out = model(
            input_ids=tokens[-1].unsqueeze(1), attention_mask=attention_mask, position_ids=next_position,
            past_key_values=cache, use_cache=True,
        )  # fmt: skip
        logits, next_position = out.logits[:, -1], next_position + 1
    return Rollout(
        completion_ids=torch.stack(tokens, dim=1),
        completion_mask=torch.stack(masks, dim=1).long(),
        is_truncated=~done,
        sampled_logp=torch.stack(logps, dim=1),
        num_generations=params.num_generations,
    )
