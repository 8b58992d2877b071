"""Policy pass: log-probs of sampled completions given their video prompt.

Every pass that scores completions (policy with gradients, old policy for μ > 1, reference model)
goes through :class:`CompletionScorer`, so all of them see the same inputs as generation: the video
features, ``video_grid_thw``, ``second_per_grid_ts`` and ``mm_token_type_ids`` (``docs/qwen_vl_notes.md``
items 1–2; the official trainer drops ``second_per_grid_ts`` here, ``docs/paper.md`` §10 item 17).

The vision tower runs once per video and its output is shared by the ``G`` completions through
``mm_encoder_outputs`` (item 7); gradients still reach the vision tower. The whole computation is one
``forward`` so that a DDP wrapper around the scorer synchronises every gradient.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPooling

from vau_r1.policy.logprobs import chunked_logprobs, token_logprobs
from vau_r1.policy.rollout import prompt_positions


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
    """Vision-tower output of the ``B`` videos, each listed ``repeats`` times (shared tensors, one ViT pass)."""
    feats = model.get_video_features(prompt["pixel_values_videos"], prompt["video_grid_thw"], return_dict=True)
    per_video = tuple(f for f in feats.pooler_output for _ in range(repeats))
    return BaseModelOutputWithPooling(pooler_output=per_video)


class CompletionScorer(nn.Module):
    """Computes ``[B*G, L]`` log-probs of completions under ``model``, in one differentiable forward.

    Args:
        model: a Qwen2/2.5-VL ``...ForConditionalGeneration`` (possibly a PEFT model around one).
        reuse_vision: run the vision tower once per video and share it across the ``G`` completions;
            ``False`` repeats ``pixel_values_videos`` ``G`` times (the official trainer's way).
        chunk_size: when set, compute log-probs from the hidden states in chunks of this many tokens
            without materialising ``[B*G, L, V]`` logits (:func:`~vau_r1.policy.logprobs.chunked_logprobs`).
    """

    def __init__(self, model: nn.Module, reuse_vision: bool = True, chunk_size: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.reuse_vision = reuse_vision
        self.chunk_size = chunk_size

    def forward(
        self,
        prompt: dict[str, torch.Tensor],
        completion_ids: torch.Tensor,
        completion_mask: torch.Tensor,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """Log-probs ``[B*G, L]`` (float32) of ``completion_ids`` under ``softmax(logits / temperature)``."""
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
        head = self.model.get_output_embeddings()
        return chunked_logprobs(hidden, head.weight, completion_ids, temperature, self.chunk_size, head.bias)

    def _inner(self, **inputs: object):
        """The decoder without the LM head (``...ForConditionalGeneration.model``, through PEFT)."""
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return base.model(**inputs)


def _repeat_videos(prompt: dict[str, torch.Tensor], repeats: int) -> torch.Tensor:
    """``pixel_values_videos`` with each video's patch rows repeated ``repeats`` times, prompt-major."""
    sizes = prompt["video_grid_thw"].prod(dim=-1).tolist()
    chunks = torch.split(prompt["pixel_values_videos"], sizes)
    return torch.cat([c for c in chunks for _ in range(repeats)], dim=0)
