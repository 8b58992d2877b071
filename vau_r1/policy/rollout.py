"""Rollout: sample ``G`` completions per video prompt, with the vision tower and the prefill run once.

The decode loop is written out (rather than ``model.generate``) for three reasons, each a silent
failure otherwise (``docs/qwen_vl_notes.md``):

* **Prefill once, share it with the G rows.** The ``B`` prompts (with their videos) are prefilled once; the
  ``G`` completions of a prompt then read its keys and values in place (:mod:`vau_r1.policy.prefix_decode`,
  ``SamplingParams.share_prompt``), or from a cache repeated ``G`` times (``share_prompt=False``, and
  Qwen3.5's linear-attention layers). ``generate(num_return_sequences=G)`` prefills the language model ``G``
  times and TRL-style prompt duplication also runs the vision tower ``G`` times (items 4–5).
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

Cost (issue 12): the sampler draws by inverse CDF, one float64 uniform per row and step, over the top-k
candidates only (``torch.multinomial`` draws an exponential per vocabulary entry, 151,936 per row, slower
than the decode forward on CPU). Every step draws uniforms for all ``B*G`` rows, so a row's tokens do not
depend on when the other rows stop. Rows that emit an EOS leave the decode batch (cache, positions and mask
are row-selected), and no forward runs after the last token.

Layout: prompt-major, completion ``i`` of prompt ``b`` at row ``b*G + i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import DynamicCache
from transformers.cache_utils import Cache

from vau_r1.model.cache import repeat_cache, select_cache_rows
from vau_r1.policy.prefix_decode import SharedPrefix, prefix_attention, supports


@dataclass(frozen=True)
class SamplingParams:
    """How completions are sampled.

    Attributes:
        num_generations: ``G``, completions per prompt.
        max_new_tokens: completion cap in tokens (``grpo.max_completion_tokens``).
        temperature: softmax temperature (> 0); also used by the policy pass.
        top_p: nucleus mass kept (1.0 disables).
        top_k: number of top tokens kept (0 disables).
        share_prompt: decode with each prompt's keys and values shared by its ``G`` rows (exact; the same
            tokens and log-probs as the repeated cache, up to float rounding), where the cache allows it.
    """

    num_generations: int
    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    share_prompt: bool = True


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


def _top_k(filtered: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values, ids)`` ``[N, K]`` of the top-k tokens, descending; tokens tied with the k-th are kept too.

    Keeping ties is ``TopKLogitsWarper``'s rule (it removes only scores below the k-th), which matters for
    bfloat16 logits. The other rows' extra columns hold ``-inf``.
    """
    k = min(top_k + 1, filtered.shape[1])
    values, ids = torch.topk(filtered, k)
    if k <= top_k:  # k covers the whole vocabulary
        return values, ids
    if bool((values[:, -1] < values[:, -2]).all()):  # no tie across the k-th: the common case
        return values[:, :top_k], ids[:, :top_k]
    kth = values[:, top_k - 1 : top_k]  # [N, 1]
    values, ids = torch.topk(filtered, int((filtered >= kth).sum(dim=1).max()))
    return values.masked_fill(values < kth, float("-inf")), ids


def _candidates(
    filtered: torch.Tensor, params: SamplingParams
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """``(values, ids, log_norm)``: every token top-k/top-p may keep (``ids=None``: all of ``filtered``).

    ``log_norm`` [N, 1] is the log-normaliser of the top-k-filtered distribution. Without top-k, a top-p nucleus
    lies in the smallest top slice holding at least ``top_p`` of the mass (every token outside then has an
    ascending cumulative mass <= ``1 - top_p`` and is removed); the slice grows 4× until it does
    (``TopPLogitsWarper`` sorts the whole vocabulary every step).
    """
    if params.top_k > 0:
        values, ids = _top_k(filtered, params.top_k)
        return values, ids, torch.logsumexp(values, dim=1, keepdim=True)
    log_norm = torch.logsumexp(filtered, dim=1, keepdim=True)  # [N, 1]
    if params.top_p >= 1.0:
        return filtered, None, log_norm
    k = min(256, filtered.shape[1])
    while True:
        values, ids = torch.topk(filtered, k)
        if k == filtered.shape[1] or bool((torch.exp(values - log_norm).sum(dim=1) >= params.top_p).all()):
            return values, ids, log_norm
        k = min(4 * k, filtered.shape[1])


def _nucleus(values: torch.Tensor, log_norm: torch.Tensor, top_p: float) -> torch.Tensor:
    """``values`` (descending) with ``TopPLogitsWarper``'s removals set to ``-inf``.

    Removed: tokens whose cumulative probability in ascending order (mass outside ``values`` included) is
    <= ``1 - top_p``, never the most likely one.
    """
    probs = torch.exp(values - log_norm)  # [N, K], normalised over the whole filtered distribution
    outside = (1.0 - probs.sum(dim=1, keepdim=True)).clamp_(min=0.0)  # [N, 1]
    ascending = probs.flip(1).cumsum(dim=1).flip(1) + outside
    remove = ascending <= 1.0 - top_p
    remove[:, 0] = False
    return values.masked_fill(remove, float("-inf"))


def _sample(
    logits: torch.Tensor, params: SamplingParams, uniforms: torch.Tensor, banned: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one token per row of ``logits`` [N, V] by inverse CDF; returns ``(tokens [N], logp [N])``.

    ``uniforms`` [N] (float64 in ``[0, 1)``) pick each row's token from the cumulative filtered probabilities,
    accumulated in token-id order: exact sampling from ``softmax`` of the filtered logits. In id order (not
    probability order) a float-rounding change of the logits moves every CDF boundary by about that much, so
    two exact decode paths (shared or repeated prompt cache) draw the same token unless a uniform falls within
    rounding of a boundary; in probability order two near-tied tokens swapping ranks would swap a whole
    interval.

    ``logp`` is the token's log-prob under ``softmax(logits / T)`` before top-k/top-p filtering and the
    ``banned`` ids are removed, i.e. the distribution the policy pass scores, computed as the policy pass does
    (``scaled[token] - logsumexp``).
    ``logits`` may be overwritten (banned ids are filled in place): pass a tensor nothing else reads.
    """
    scaled = logits.float()  # [N, V]
    if params.temperature != 1.0:
        scaled = scaled / params.temperature
    lse = torch.logsumexp(scaled, dim=1)  # [N], of the unfiltered distribution
    if banned is not None:
        scaled.index_fill_(1, banned, float("-inf"))
    values, ids, log_norm = _candidates(scaled, params)  # [N, K], [N, K] or None, [N, 1]
    if params.top_p < 1.0:
        values = _nucleus(values, log_norm, params.top_p)
    if ids is not None:  # the CDF runs in token-id order: near-tied candidates swapping ranks move no boundary
        ids, order = ids.sort(dim=1)
        values = values.gather(1, order)
    cdf = torch.exp(values - log_norm).double().cumsum(dim=1)  # [N, K]; its last column is the kept mass
    total = cdf[:, -1:]  # [N, 1]
    below = torch.nextafter(total, torch.zeros_like(total))  # the largest float64 under the kept mass
    target = torch.minimum(uniforms.to(cdf.dtype).unsqueeze(1) * total, below)
    pick = torch.searchsorted(cdf, target, right=True)  # [N, 1]; target < total: a zero-width entry is never picked
    tokens = pick.squeeze(1) if ids is None else ids.gather(1, pick).squeeze(1)
    return tokens, values.gather(1, pick).squeeze(1) - lse


def _prefill(
    model: nn.Module, prompt: dict[str, torch.Tensor], positions: torch.Tensor, repeats: int, share: bool = False
) -> tuple[torch.Tensor, Cache, SharedPrefix | None]:
    """Run the vision tower and the prompt once: ``(last logits [B*G, V], cache, shared prompt or None)``.

    With ``share`` (and a cache that allows it) the prompt's keys/values move to the returned
    :class:`SharedPrefix` and the cache keeps the completion tokens only; otherwise the cache is repeated to B*G.
    """
    out = model(
        **prompt,
        position_ids=positions,
        past_key_values=DynamicCache(config=model.config.get_text_config()),
        use_cache=True,
        logits_to_keep=1,
    )
    cache, logits = out.past_key_values, out.logits[:, -1].repeat_interleave(repeats, dim=0)
    if share and supports(cache):
        return logits, cache, SharedPrefix.from_prefill(cache, prompt["attention_mask"], repeats)
    repeat_cache(cache, repeats)  # keys/values and linear-attention states (Qwen3.5)
    return logits, cache, None


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
        logits, cache, prefix = _prefill(model, prompt, positions, G, params.share_prompt)  # [B*G, V]
        banned_ids = placeholder_token_ids(model) if banned_token_ids is None else banned_token_ids
        return _decode(
            model, logits, cache, prefix,
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
    cache: Cache,
    prefix: SharedPrefix | None,
    *,
    next_position: torch.Tensor,
    attention_mask: torch.Tensor,
    params: SamplingParams,
    eos_token_ids: list[int],
    banned_token_ids: list[int],
    pad_token_id: int,
    generator: torch.Generator | None,
) -> Rollout:
    """Sample from the prefilled ``logits`` [B*G, V] token by token until every row has an EOS or the cap.

    A row that samples an EOS leaves the decode batch; no forward runs after the last sampled token. Each step
    draws one uniform for every one of the ``B*G`` rows, used or not, so the stream of a row is fixed by the
    generator alone. The outputs start as padding (pad id, mask 0, log-prob 0) and each step writes its rows.
    """
    (n, vocab), device, cap = logits.shape, logits.device, params.max_new_tokens
    is_eos = torch.zeros(vocab, dtype=torch.bool, device=device)  # [V] lookup (EOS ids past V are never sampled)
    is_eos[[i for i in eos_token_ids if 0 <= i < vocab]] = True
    banned = torch.tensor(banned_token_ids, dtype=torch.long, device=device) if banned_token_ids else None
    ids = torch.full((n, cap), pad_token_id, dtype=torch.long, device=device)
    mask = torch.zeros((n, cap), dtype=torch.long, device=device)
    logp = torch.zeros((n, cap), dtype=torch.float32, device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)  # [B*G]
    prompt_len = attention_mask.shape[1]
    batch = _DecodeBatch(torch.arange(n, device=device), cache, next_position,
                         torch.cat([attention_mask, attention_mask.new_ones(n, cap)], dim=1), prefix)  # fmt: skip
    steps = 0
    while steps < cap:
        uniforms = torch.rand(n, generator=generator, device=device, dtype=torch.float64)  # [B*G]
        token, token_logp = _sample(logits, params, uniforms[batch.rows], banned)  # [n]
        ids[batch.rows, steps], logp[batch.rows, steps], mask[batch.rows, steps] = token, token_logp, 1
        steps += 1
        finished = is_eos[token]  # [n]
        if bool(finished.any()):
            done[batch.rows[finished]] = True
            if bool(finished.all()):
                break
            if steps < cap:
                batch.keep((~finished).nonzero().squeeze(1))
                token = token[~finished]
        if steps == cap:
            break
        logits = _decode_step(model, token, batch, prompt_len + steps)  # [n, V]
        batch.next_position = batch.next_position + 1
    return Rollout(ids[:, :steps], mask[:, :steps], ~done, logp[:, :steps], params.num_generations)


def _decode_step(model: nn.Module, token: torch.Tensor, batch: _DecodeBatch, length: int) -> torch.Tensor:
    """Logits ``[n, V]`` after feeding ``token`` ``[n]``; ``length`` counts prompt + completion tokens so far."""
    if batch.prefix is None:
        return model(input_ids=token.unsqueeze(1), attention_mask=batch.attention_mask[:, :length],
                     position_ids=batch.next_position, past_key_values=batch.cache, use_cache=True).logits[:, -1]
    with prefix_attention(model):  # the masks come from batch.prefix (prompt padding; live rows only)
        return model(input_ids=token.unsqueeze(1), position_ids=batch.next_position, past_key_values=batch.cache,
                     use_cache=True, shared_prefix=batch.prefix).logits[:, -1]  # fmt: skip


@dataclass
class _DecodeBatch:
    """The rows still decoding: their row numbers in the rollout, cache, next positions and attention mask.

    Attributes:
        rows: ``[n]`` indices into the ``B*G`` rollout rows.
        cache: the KV cache of those rows.
        next_position: ``[3, n, 1]`` position of the token fed next.
        attention_mask: ``[n, P + max_new_tokens]``, preallocated (ones after the prompt); a step uses a prefix.
        prefix: the prompts' shared keys/values (then ``cache`` holds completion tokens only), or None.
    """

    rows: torch.Tensor
    cache: Cache
    next_position: torch.Tensor
    attention_mask: torch.Tensor
    prefix: SharedPrefix | None = None

    def keep(self, index: torch.Tensor) -> None:
        """Keep only the rows at ``index`` (into the current rows) in every tensor and the cache."""
        self.rows = self.rows[index]
        select_cache_rows(self.cache, index)
        self.next_position = self.next_position[:, index]
        self.attention_mask = self.attention_mask[index]
        if self.prefix is not None:
            self.prefix.rows = self.rows
