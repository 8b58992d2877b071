"""The trainers: one file per algorithm, whose step reads top to bottom as named calls.

* :mod:`~vau_r1.recipes.grpo` — :class:`~vau_r1.recipes.grpo.GRPOTrainer` (rollout → rewards → advantages →
  old/ref log-probs → loss → optimizer);
* :mod:`~vau_r1.recipes.sft` — :class:`~vau_r1.recipes.sft.SFTTrainer` (encode → cross-entropy → optimizer);
* :mod:`~vau_r1.recipes.config` — :class:`~vau_r1.recipes.config.RunConfig`, the whole validated run;
* :mod:`~vau_r1.recipes.grpo_metrics` — what the GRPO step reports.

Each trainer owns a :class:`~vau_r1.engine.loop.TrainEngine` and hands it its ``step``.
"""
