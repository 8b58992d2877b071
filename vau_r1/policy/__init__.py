"""Passes of the policy that both algorithms share, below GRPO and SFT.

* :mod:`~vau_r1.policy.rollout` — sampling completions with the video (one prefill, KV cache, top-k/top-p),
  and the prompt positions generation and scoring agree on;
* :mod:`~vau_r1.policy.scorer` — :class:`~vau_r1.policy.scorer.CompletionScorer`, the one differentiable
  forward that gives ``[B*G, L]`` log-probs of completions (GRPO's policy, old and reference passes, the
  SFT loss);
* :mod:`~vau_r1.policy.logprobs` — token log-probs from logits, whole or in chunks.
"""
