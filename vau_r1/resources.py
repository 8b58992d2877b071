"""Where the files that ship inside the package live: the one place that names the config root.

The Hydra config tree is package data (``vau_r1/configs/``), so every command finds it through the installed
package, from any working directory, editable install or wheel alike. A user's own config folder is added on
top with Hydra's ``--config-dir`` (``vau-r1 train --config-dir my_configs experiment=my_run``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CONFIG_ROOT", "config_dir"]

#: The package's config tree (``train.yaml`` and its groups, ``eval/``, ``video/``, ``judge/``, ``accelerate/``).
CONFIG_ROOT: Path = Path(__file__).resolve().parent / "configs"


def config_dir(*parts: str) -> Path:
    """A folder (or file) of the config tree, e.g. ``config_dir("video")``.

    >>> config_dir("eval").name
    'eval'
    """
    return CONFIG_ROOT.joinpath(*parts)
