"""The training engine: what every recipe shares and no algorithm defines.

* :mod:`~vau_r1.engine.loop` — :class:`~vau_r1.engine.loop.TrainEngine` (data order, wrapping, optimiser,
  schedule, logging cadence, checkpoints, resume) runs a recipe's step function;
* :mod:`~vau_r1.engine.checkpoint` — checkpoint layout, manifest, save/load, ``resume=auto``;
* :mod:`~vau_r1.engine.sharding` — the differences between one process, DDP, DeepSpeed ZeRO-2/3 and FSDP2;
* :mod:`~vau_r1.engine.distributed` — the accelerator, seeds, the sharded sampler, cross-rank reductions;
* :mod:`~vau_r1.engine.loggers` — ``metrics.jsonl``, wandb, tensorboard;
* :mod:`~vau_r1.engine.stats` — per-step statistics reduced over ranks;
* :mod:`~vau_r1.engine.config` — the ``trainer`` and ``logger`` sections and the loop's run-level keys.

It imports the algorithm maths below it only for types and the loss statistics; never a recipe.
"""
