"""``vau-r1 demo``: SFT → swap-probe gate → GRPO against a continued-SFT control, on synthetic clips, on a CPU.

* :mod:`~vau_r1.demo.run` — the pipeline; :mod:`~vau_r1.demo.options` — its settings;
* :mod:`~vau_r1.demo.data` — the clip splits; :mod:`~vau_r1.demo.report`, :mod:`~vau_r1.demo.tables`,
  :mod:`~vau_r1.demo.plot` — what it writes.
"""
