"""vau_r1: reinforcement fine-tuning of video LLMs for video anomaly understanding.

Importing the package is cheap: torch, transformers and decord load lazily in the submodules
that need them.
"""

__version__ = "0.1.0"
