"""The inputs and the result of ``vau-r1 plan``'s memory arithmetic: architecture, shapes, precision, what
trains, and the estimate as a list of terms, each live in some of the step's phases.

The phases (:data:`PHASES`) are the moments of one GRPO step whose live memory can peak:

* **rollout**: persistent state + the KV cache of ``B*G`` rows + the prefill's and the sampler's working sets;
* **scoring**: the log-prob passes without gradients (reference model, old policy);
* **policy**: the forward and the start of the backward with gradients: saved activations + the log-prob
  head's working set + the head's gradient (the first gradient backward makes);
* **optimizer**: persistent state + every gradient + the optimizer's temporaries (the end of the backward
  holds the same gradients, and less else).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Bytes of a float32 element (masks, norms, AdamW states, master weights, log-prob chunks).
FP32 = 4
#: Bytes of a float64 element (the sampler's cumulative probabilities).
FP64 = 8
PHASES: tuple[str, ...] = ("rollout", "scoring", "policy", "optimizer")


@dataclass(frozen=True)
class Arch:
    """The numbers of a model that memory depends on (from its config; parameter counts from a meta build)."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    vision_hidden: int
    vision_intermediate: int
    vision_depth: int
    vision_gated: bool  # Qwen2.5-VL's SwiGLU vision MLP (True) or Qwen2-VL's GELU MLP
    params_total: int
    params_vision: int
    params_lm_head: int  # 0 when tied to the input embeddings
    largest_param: int = 0  # elements of the largest parameter tensor (the embeddings, vocab x hidden)

    @property
    def kv_dim(self) -> int:
        """Width of the keys (and of the values) of one token in one layer."""
        return self.hidden // self.heads * self.kv_heads

    @property
    def head_elements(self) -> int:
        """Elements of the LM head's weight (``vocab x hidden``, tied or not)."""
        return self.vocab * self.hidden


@dataclass(frozen=True)
class Shapes:
    """Per-device shapes of one micro-batch: ``B`` prompts of ``P`` tokens (``visual`` of them video), ``G`` x ``L``
    completion tokens each."""

    prompts: int
    generations: int
    prompt_tokens: int
    visual_tokens: int
    completion_tokens: int
    share_prompt: bool = False
    reuse_vision: bool = True
    logprob_chunk_tokens: int | None = None
    merge: int = 2  # spatial merge per side: patches per visual token = merge**2
    reference_pass: bool = True
    padded: bool = True  # rows of unequal length (EOS before L, prompts of unequal length): a 4-D mask is built
    micro_batches: int = 1  # gradient accumulation: every micro-batch's video inputs are held through the step
    temperature: float = 1.0  # grpo.temperature: logits / T is one more vocabulary-wide copy when T != 1

    @property
    def rows(self) -> int:
        """Rows the language model sees in a pass: ``B*G``, or ``B`` packed rows with ``grpo.share_prompt``."""
        return self.prompts if self.share_prompt else self.prompts * self.generations

    @property
    def row_tokens(self) -> int:
        """Tokens per row: ``P + L``, or ``P + G*L`` with ``grpo.share_prompt``."""
        n = self.generations if self.share_prompt else 1
        return self.prompt_tokens + n * self.completion_tokens

    @property
    def scored_tokens(self) -> int:
        """Completion positions scored per pass: ``B*G*L``."""
        return self.prompts * self.generations * self.completion_tokens


@dataclass(frozen=True)
class Precision:
    """Bytes of weights and compute, and how the strategy splits state over ``processes``."""

    weight_bytes: int  # the model's dtype: 4 (float32) or 2 (bfloat16/float16)
    compute_bytes: int  # activations: 2 under bf16/fp16 autocast, else 4
    strategy: str = "ddp"  # ddp | zero2 | zero3 | zero3_offload | fsdp2
    processes: int = 1
    gradient_checkpointing: bool = False
    attention: str = "sdpa"  # sdpa | eager | flash_attention_2
    on_gpu: bool = False


@dataclass(frozen=True)
class Trainable:
    """What trains: parameter counts and which activations autograd must keep."""

    params: int  # trainable parameters (LoRA: the adapters)
    added: int = 0  # parameters added to the base model (LoRA adapters), included in ``params``
    vision: bool = True  # the vision tower trains (else its forward keeps nothing)
    lora_dropout: bool = False  # LoRA with dropout > 0: each adapted projection keeps a dropped copy of its input
    reference: bool = True  # a frozen reference copy is held (grpo.beta > 0 without LoRA)
    head: bool = True  # the LM head's weight trains (full training; LoRA leaves it frozen)
    largest: int = 0  # elements of the largest trainable tensor (CPU AdamW's temporaries are two of its size)


@dataclass
class Term:
    """One line of the estimate: what it is, its bytes per device and in which phases it is live."""

    name: str
    bytes: float
    phases: tuple[str, ...]
    note: str = ""


@dataclass
class Estimate:
    """All terms and the peak phase."""

    terms: list[Term] = field(default_factory=list)

    def phase_bytes(self, phase: str) -> float:
        """Bytes live in ``phase``: the terms listed for it, or for every phase (``"all"``)."""
        return sum(t.bytes for t in self.terms if phase in t.phases or "all" in t.phases)

    def peak(self) -> tuple[str, float]:
        """``(phase, bytes)`` of the largest phase."""
        return max(((p, self.phase_bytes(p)) for p in PHASES), key=lambda item: item[1])
