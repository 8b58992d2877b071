"""How a test's worker script ends a gloo rank: run it, print a traceback on failure, then leave without gloo's exit.

gloo can abort in its own shutdown, so ranks destroy the process group and end with ``os._exit``.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable


def run_rank(worker: Callable[..., None], *args: object) -> None:
    """Call ``worker(*args)``; exit 0 if it returns, 1 (with its traceback) if it raises."""
    import torch

    code = 0
    try:
        worker(*args)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:  # gloo may abort in its own shutdown; end the ranks explicitly
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
