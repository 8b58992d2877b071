"""Supervised fine-tuning (the paper's SFT baselines) on the GRPO trainer's data, model and checkpoint machinery.

* :mod:`vau_r1.sft.batching` — :class:`SFTTargets`, :class:`SFTBatch`, :func:`build_sft_batch` (sequences, labels);
* :mod:`vau_r1.recipes.sft` — :class:`SFTTrainer`.

Run it with ``vau-r1 train algorithm=sft ...`` (or an ``experiment=*_sft_*`` file, which sets it).
"""

from __future__ import annotations
