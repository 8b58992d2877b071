"""Settings of ``vau-r1 demo`` (:class:`DemoOptions`): one source of truth for the demo's defaults.

The defaults are sized for 2 CPU cores and about 15 minutes. What they were chosen from (measured on this
project's 2-core machine, 1 thread per run, see the README's Demo section):

* a 28-px marker (one merged vision token) is read by the tiny model after about 200–400 SFT steps (TAG mIoU
  83 with the right videos against 14 with swapped ones at step 400), QA follows by about 600 (68 against 40);
  QA + TAG together learn faster than QA alone (60 at 800 steps) and adding CLS did not help QA;
* GRPO and the control get the same peak learning rate and cosine schedule, with no re-warm; the control's
  step count gives it about GRPO's wall time (:data:`SFT_STEPS_PER_GRPO_STEP`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SFT_STEPS_PER_GRPO_STEP", "SIZES", "DemoOptions"]

#: Model size presets (vau_r1.model.tiny.TinyConfig fields). ``small`` is about 1.1M parameters.
SIZES: dict[str, dict[str, int]] = {
    "small": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
              "num_key_value_heads": 2, "vision_hidden_size": 64, "vision_intermediate_size": 128,
              "vision_depth": 2, "vision_num_heads": 2},
    "medium": {"hidden_size": 192, "intermediate_size": 512, "num_hidden_layers": 6, "num_attention_heads": 6,
               "num_key_value_heads": 2, "vision_hidden_size": 96, "vision_intermediate_size": 192,
               "vision_depth": 3, "vision_num_heads": 4},
}  # fmt: skip
#: Continued-SFT steps (batch 16) per GRPO step (8 prompts x 8 completions): about GRPO's wall time (measured on
#: 2 cores, 1 thread, load about 1: 0.60 s per SFT step, 2.65 s per GRPO step).
SFT_STEPS_PER_GRPO_STEP = 4
_COUNTS = ("sft_steps", "grpo_steps", "num_train", "num_grpo", "num_val", "num_test", "sft_batch", "grpo_prompts",
           "grpo_generations", "eval_batch")  # fmt: skip


@dataclass(frozen=True)
class DemoOptions:
    """Settings of one demo run (the ``vau-r1 demo`` options).

    Attributes:
        out_dir: output folder (data, runs, evaluations, table, plot).
        seed: seeds the data, the weight init and the training order.
        sft_steps: SFT steps from scratch (batch ``sft_batch``).
        grpo_steps: GRPO steps (``grpo_prompts`` prompts x ``grpo_generations`` completions each).
        control_steps: continued-SFT steps of the control; ``None``: ``SFT_STEPS_PER_GRPO_STEP * grpo_steps``.
        num_train: SFT clips (each a QA and a TAG example).
        num_grpo: fresh clips of GRPO and the control (never seen in SFT).
        num_val: clips of the swap-probe gate split (neither trained on nor the test).
        num_test: clips of each held-out test split (in-distribution and shifted).
        size: model size preset, a key of :data:`SIZES`.
        threads: torch CPU threads.
        sft_lr: peak learning rate of SFT from scratch.
        rl_lr: peak learning rate of GRPO and of the continued-SFT control (the same for both).
        sft_batch, grpo_prompts, grpo_generations: batch sizes.
        eval_batch: videos per generate call.
        swap_margin: QA accuracy points SFT must lose on the gate split when the videos are swapped before
            GRPO starts.
        progress: show the trainers' and evaluators' progress bars.
    """

    out_dir: Path = Path("outputs/demo")
    seed: int = 0
    sft_steps: int = 600
    grpo_steps: int = 50
    control_steps: int | None = None
    num_train: int = 400
    num_grpo: int = 300
    num_val: int = 60
    num_test: int = 100
    size: str = "small"
    threads: int = 1
    sft_lr: float = 3.0e-3
    rl_lr: float = 1.0e-4
    sft_batch: int = 16
    grpo_prompts: int = 8
    grpo_generations: int = 8
    eval_batch: int = 50
    swap_margin: float = 15.0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"size={self.size!r}; expected one of {sorted(SIZES)}")
        bad = [f"{k}={getattr(self, k)}" for k in (*_COUNTS, "threads") if getattr(self, k) < 1]
        if self.control_steps is not None and self.control_steps < 1:
            bad.append(f"control_steps={self.control_steps}")
        if bad:
            raise ValueError(f"demo options must be >= 1: {', '.join(bad)}")
        if not 0 <= self.swap_margin <= 100:
            raise ValueError(f"swap_margin={self.swap_margin}; expected accuracy points in [0, 100]")

    @classmethod
    def quick(cls, **changes: Any) -> DemoOptions:
        """The shortened demo of the tests: a minute or two on 2 CPU cores, same stages (the gate is off)."""
        small = {"sft_steps": 30, "grpo_steps": 3, "num_train": 16, "num_grpo": 8, "num_val": 8, "num_test": 8,
                 "sft_batch": 8, "grpo_prompts": 4, "grpo_generations": 4, "swap_margin": 0.0}  # fmt: skip
        return cls(**{**small, **changes})

    @property
    def control(self) -> int:
        """Continued-SFT steps of the control."""
        return self.control_steps if self.control_steps is not None else SFT_STEPS_PER_GRPO_STEP * self.grpo_steps

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (``out_dir`` as a string)."""
        return {**dataclasses.asdict(self), "out_dir": str(self.out_dir), "control_steps": self.control}
