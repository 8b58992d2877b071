"""Entry points: the Hydra apps ``vau-r1 train`` and ``vau-r1 eval run`` call, and the single-video tools.

* :mod:`~vau_r1.apps.train` — builds the run (model, data, rewards, accelerator) and the recipe, and trains;
* :mod:`~vau_r1.apps.evaluate` — ``vau-r1 eval run`` (the evaluation pipeline is :mod:`vau_r1.eval`);
* :mod:`~vau_r1.apps.predict` — ``vau-r1 predict``: every task on one video;
* :mod:`~vau_r1.apps.viz` — the timeline picture ``predict`` draws.
"""
