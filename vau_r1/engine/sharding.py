"""What a training loop does differently under DeepSpeed ZeRO-2/3 and FSDP2 (``trainer.strategy``).

:class:`Sharding` reads the strategy off the accelerator and hides the differences from the trainer:

* **Configuration** before ``accelerator.prepare``: DeepSpeed gets the per-process batch size, one accumulation
  step (the trainer accumulates and scales the loss itself) and the clipping norm; FSDP2 shards each of the
  model's ``_no_split_modules`` (decoder layers, vision blocks) as a unit.
* **Micro-batches**: DDP skips the all-reduce until the last one (``no_sync``); DeepSpeed takes its optimizer
  step inside ``backward`` of the last one only (``accelerator.sync_gradients``); FSDP2 reduce-scatters each.
* **Full parameters for generation**: under ZeRO-3 and FSDP2 every forward gathers weights collectively, and
  ranks decode different numbers of tokens, so token-by-token decoding would hang or crawl. The rollout runs
  with the weights gathered once (ZeRO-3: DeepSpeed's ``unwrap_model_for_generation``, which also lifts the
  fetch hooks; FSDP2: every unit unsharded, inside the root's forward so that FSDP's root logic runs).
* **Frozen reference**: partitioned like the policy (ZeRO-3: a DeepSpeed inference engine; FSDP2: ``fully_shard``).
* **Saving**: the full state dict gathered on rank 0 (ZeRO-3: the weights in their training dtype, bf16 or
  fp32), for ``save_pretrained``; :meth:`Sharding.full_parameters` gathers them on every rank for reading.

Collectives must line up across ranks: every rank runs the same passes in the same order. The trainer
guarantees it by giving a rank whose micro-batch has no loadable video a stand-in prompt (zero loss weight),
and every prompt has exactly one video, so the vision tower runs the same number of times on every rank.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
from accelerate.utils import DistributedType
from torch import nn

T = TypeVar("T")


class Sharding:
    """The sharding strategy of ``accelerator`` and its runtime helpers.

    Attributes:
        zero_stage: DeepSpeed ZeRO stage, ``None`` without DeepSpeed.
        fsdp_version: FSDP version, ``None`` without FSDP.
    """

    def __init__(self, accelerator: Any) -> None:
        self.accelerator = accelerator
        kind, state = accelerator.distributed_type, accelerator.state
        self.zero_stage: int | None = state.deepspeed_plugin.zero_stage if kind == DistributedType.DEEPSPEED else None
        self.fsdp_version: int | None = state.fsdp_plugin.fsdp_version if kind == DistributedType.FSDP else None
        if self.fsdp_version not in (None, 2):
            raise ValueError(f"FSDP version {self.fsdp_version} is not supported; set fsdp_version: 2 (fully_shard)")

    @property
    def name(self) -> str:
        """``ddp`` (DDP, or one process), ``zero2``, ``zero3`` or ``fsdp2``."""
        if self.zero_stage is not None:
            return f"zero{self.zero_stage}"
        return "fsdp2" if self.fsdp_version else "ddp"

    @property
    def enabled(self) -> bool:
        """DeepSpeed or FSDP (state saved through ``accelerator.save_state``)."""
        return self.zero_stage is not None or self.fsdp_version is not None

    @property
    def partitioned(self) -> bool:
        """Parameters are split across ranks (ZeRO-3, FSDP2): generation and saving must gather them."""
        return self.zero_stage == 3 or self.fsdp_version is not None

    def configure(self, scorer: nn.Module, micro_batch_size: int, max_grad_norm: float | None) -> None:
        """Settings that must be in place before ``accelerator.prepare(scorer, optimizer)``.

        Args:
            scorer: the :class:`~vau_r1.policy.scorer.CompletionScorer` around the policy.
            micro_batch_size: prompts per process per micro-batch.
            max_grad_norm: gradient clipping norm, ``None`` for none.
        """
        if self.zero_stage is not None:
            config = self.accelerator.state.deepspeed_plugin.deepspeed_config
            config["train_micro_batch_size_per_gpu"] = micro_batch_size
            config["gradient_accumulation_steps"] = 1  # the trainer accumulates; DeepSpeed must not rescale
            config["gradient_clipping"] = max_grad_norm or 0.0
            config["train_batch_size"] = micro_batch_size * self.accelerator.num_processes
            if self.zero_stage == 3:  # checkpoints need the full weights on rank 0
                config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] = True
                _register_output_head(scorer)
        elif self.fsdp_version is not None:
            plugin = self.accelerator.state.fsdp_plugin
            if plugin.transformer_cls_names_to_wrap is None:
                plugin.transformer_cls_names_to_wrap = sorted(getattr(scorer.model, "_no_split_modules", None) or ())

    def keep_fp32_masters(self, model: nn.Module) -> torch.dtype | None:
        """Upcast ``model``'s trainable bf16/fp16 parameters to fp32 master weights, before ``accelerator.prepare``.

        AdamW on bf16 weights loses most small updates to rounding (at lr 1e-6 nearly all of them). The forwards
        then run under autocast to the old dtype (:meth:`vau_r1.engine.loop.TrainEngine.autocast`; FSDP2 keeps
        its fp32 shards and computes as its mixed-precision policy says) and checkpoints write ``model/`` in it.
        DeepSpeed's bf16/fp16 mode keeps fp32 masters of its own, so under DeepSpeed nothing is cast.

        Returns:
            The dtype the trainable parameters had, ``None`` when none was bf16/fp16 (or under DeepSpeed).
        """
        if self.zero_stage is not None:
            return None
        low = [p for p in model.parameters() if p.requires_grad and p.dtype in (torch.bfloat16, torch.float16)]
        if not low:
            return None
        dtypes = {p.dtype for p in low}
        if len(dtypes) > 1:
            raise ValueError(f"trainable parameters mix {sorted(map(str, dtypes))}; load the model in one dtype")
        for param in low:
            param.data = param.data.float()
        return dtypes.pop()

    @contextlib.contextmanager
    def micro_batch(self, prepared: nn.Module, last: bool) -> Iterator[None]:
        """Backward of one micro-batch of an optimizer step; gradients are synchronised after the ``last``."""
        if self.zero_stage is not None:
            self.accelerator.sync_gradients = last  # DeepSpeed steps inside backward() at the boundary only
            try:
                yield
            finally:
                self.accelerator.sync_gradients = True
        elif last or self.fsdp_version is not None:
            yield
        else:
            with self.accelerator.no_sync(prepared):
                yield

    def with_full_parameters(self, prepared: nn.Module, fn: Callable[[], T]) -> T:
        """``fn()`` (the rollout) with the model's full weights on every rank, without gradients and with no
        collective in its forwards.

        Collective per call (it gathers), so every rank must call it the same number of times.
        """
        if self.zero_stage == 3:
            from deepspeed.runtime.zero.stage3 import unwrap_model_for_generation

            with torch.no_grad(), unwrap_model_for_generation(prepared):
                return fn()
        if self.fsdp_version is not None:
            try:
                return _call_as_forward(prepared, lambda: _with_units_unsharded(prepared, self._reshard(), fn))
            finally:
                prepared.reshard()  # the root keeps its weights gathered after a forward; free them
        with torch.no_grad():
            return fn()

    @contextlib.contextmanager
    def full_parameters(self, prepared: nn.Module) -> Iterator[None]:
        """Inside, the unwrapped model's ``named_parameters()`` are full tensors on every rank (to read them).

        Collective: every rank must enter it. Not for forwards (use :meth:`with_full_parameters`).
        """
        if self.zero_stage == 3:
            import deepspeed

            with deepspeed.zero.GatheredParameters(list(prepared.parameters())):
                yield
        elif self.fsdp_version is not None:
            from torch.distributed.fsdp import FSDPModule

            _call_as_forward(prepared, lambda: None)  # FSDP initialises lazily, in the root's first forward
            units = [m for m in prepared.modules() if isinstance(m, FSDPModule)]
            for unit in units:
                unit.unshard()
            try:
                yield
            finally:
                for unit in units:
                    unit.reshard()
        else:
            yield

    def prepare_frozen(self, scorer: nn.Module) -> nn.Module:
        """Partition a frozen scorer (the reference model) like the policy; call it under ``torch.no_grad``.

        ZeRO-3: a DeepSpeed inference engine with the policy's (filled-in) config minus optimizer settings.
        FSDP2: ``fully_shard`` per unit and at the root. Otherwise the scorer is returned as it is.
        """
        scorer.eval()
        if self.zero_stage == 3:
            import deepspeed

            config = copy.deepcopy(self.accelerator.state.deepspeed_plugin.deepspeed_config)
            for key in ("optimizer", "scheduler"):
                config.pop(key, None)
            config["zero_optimization"].pop("offload_optimizer", None)
            _register_output_head(scorer)
            engine, *_ = deepspeed.initialize(model=scorer, config=config)
            engine.eval()  # DeepSpeedEngine.eval() returns None
            return engine
        if self.fsdp_version is not None:
            from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

            plugin = self.accelerator.state.fsdp_plugin
            options = {
                "reshard_after_forward": plugin.reshard_after_forward,
                "mp_policy": plugin.mixed_precision_policy or MixedPrecisionPolicy(),
                "offload_policy": plugin.cpu_offload,
            }
            names = set(plugin.transformer_cls_names_to_wrap or ())
            for module in [m for m in scorer.modules() if type(m).__name__ in names]:
                fully_shard(module, **options)
            fully_shard(scorer, **options)
        return scorer

    def full_state_dict(self, prepared: nn.Module, model: nn.Module) -> dict[str, torch.Tensor] | None:
        """``model``'s full state dict (its own key names) on the main process, ``None`` on the others.

        Collective (call it on every rank). ``model`` is a submodule of the unwrapped ``prepared``.
        """
        state = self.accelerator.get_state_dict(prepared)
        if not self.accelerator.is_main_process:
            return None
        root = self.accelerator.unwrap_model(prepared)
        prefix = next(name for name, module in root.named_modules() if module is model)
        prefix = f"{prefix}." if prefix else ""
        return {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}

    def _reshard(self) -> bool:
        return bool(self.accelerator.state.fsdp_plugin.reshard_after_forward)


def loads_partitioned() -> bool:
    """Whether transformers builds models partitioned right now (a DeepSpeed ZeRO-3 accelerator exists).

    accelerate registers its DeepSpeed config with transformers, whose ``from_pretrained`` (and ``from_config``)
    then load straight into ZeRO-3 partitions: memory-lean, but such a model cannot be deep-copied.
    """
    from transformers.integrations import is_deepspeed_zero3_enabled

    return is_deepspeed_zero3_enabled()


def _register_output_head(scorer: nn.Module) -> None:
    """ZeRO-3: let DeepSpeed gather the LM head's weight for the scorer's own forward.

    With ``grpo.logprob_chunk_tokens`` the scorer multiplies hidden states by ``lm_head.weight`` itself instead
    of calling the head, so the weight must be fetched with the scorer (DeepSpeed's "external parameter").
    """
    if getattr(scorer, "chunk_size", None) is None:
        return
    import deepspeed

    deepspeed.zero.register_external_parameter(scorer, scorer.model.get_output_embeddings().weight)


def _call_as_forward(module: nn.Module, fn: Callable[[], T]) -> T:
    """Run ``fn()`` as ``module``'s forward, so that the forward hooks of a sharding wrapper run around it."""
    saved = module.__dict__.get("forward")  # accelerate may have set an instance-level (autocast) forward
    module.forward = lambda *args, **kwargs: fn()
    try:
        with torch.no_grad():
            return module()
    finally:
        if saved is None:
            del module.forward
        else:
            module.forward = saved


def _with_units_unsharded(root: nn.Module, reshard_after_forward: bool, fn: Callable[[], T]) -> T:
    """Inside the FSDP root's forward: unshard every other unit once, keep it so through ``fn()``, reshard."""
    from torch.distributed.fsdp import FSDPModule

    units = [m for m in root.modules() if isinstance(m, FSDPModule) and m is not root]
    for unit in units:
        unit.set_reshard_after_forward(False, recurse=False)
        unit.unshard()
    try:
        return fn()
    finally:
        for unit in units:
            unit.reshard()
            unit.set_reshard_after_forward(reshard_after_forward, recurse=False)
