"""Prediction folders of ``vau-r1 eval run``: the clean split in ``output_dir``, each probe in ``probe_<name>/``.

Each folder has its own ``run.json`` fingerprint (a probe's adds ``probe``) and its own resumable
:class:`~vau_r1.eval.runner.PredictionStore`. :class:`Generator` fills one folder after another with one
model, loaded on first need, so a finished run (clean and probed) loads nothing.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from accelerate import PartialState

from vau_r1.data.schema import VideoSample
from vau_r1.data.video import VideoConfig
from vau_r1.eval.loading import ModelRef, load_for_eval
from vau_r1.eval.probes import Probe
from vau_r1.eval.runner import PredictionStore, VideoItems, run_predictions
from vau_r1.eval.settings import EvalConfig
from vau_r1.model.families import video_processing_for
from vau_r1.sections import ConfigError

__all__ = ["Generator", "prepare_output", "probe_dir"]

logger = logging.getLogger(__name__)

#: ``make_predictor(cfg, model, tokenizer) -> predict(items) -> records``.
PredictorFactory = Callable[[EvalConfig, Any, Any], Callable[[list], list[dict[str, Any]]]]


def probe_dir(output_dir: str | Path, probe: str) -> Path:
    """Folder of a probe's predictions: ``<output_dir>/probe_<probe>``."""
    return Path(output_dir) / f"probe_{probe}"


def prepare_output(out: Path, fingerprint: dict[str, Any], overwrite: bool, state: PartialState) -> None:
    """Check ``out/run.json`` against this run's settings; with ``overwrite`` start the folder afresh.

    Raises:
        ConfigError: the folder holds predictions made with other settings and ``overwrite`` is off.
    """
    stamp = out / "run.json"
    if stamp.is_file() and not overwrite:
        stored = json.loads(stamp.read_text()).get("fingerprint", {})
        fingerprint = json.loads(json.dumps(fingerprint))  # as stored: tuples read back as lists
        if stored != fingerprint:
            changed = sorted(k for k in set(stored) | set(fingerprint) if stored.get(k) != fingerprint.get(k))
            raise ConfigError(
                f"{out} holds predictions made with other settings (changed: {changed}); use another output_dir "
                "or set overwrite=true to discard them"
            )
    state.wait_for_everyone()
    if state.is_main_process:
        if overwrite:
            for name in ("parts", "predictions.jsonl", "judge"):
                target = out / name
                shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps({"fingerprint": fingerprint}, indent=2) + "\n")
    state.wait_for_everyone()


class Generator:
    """Generates the missing predictions of one folder after another with one model.

    Args:
        cfg: the run's config.
        ref: the model reference (loaded with ``cfg.model_load`` when ``model`` is ``None``).
        video_config: the resolved video sampling.
        state: the process group.
        model, tokenizer: an already loaded model (tests, the demo), or ``None``.
        make_predictor: builds the ``predict(items)`` function of a loaded model.
    """

    def __init__(self, cfg: EvalConfig, ref: ModelRef, video_config: VideoConfig, state: PartialState, model: Any,
                 tokenizer: Any, make_predictor: PredictorFactory) -> None:  # fmt: skip
        self.cfg, self.ref, self.video_config, self.state = cfg, ref, video_config, state
        self.model, self.tokenizer, self.make_predictor = model, tokenizer, make_predictor
        self.generation_config: dict[str, Any] | None = None  # the checkpoint's, once the model has generated

    def _loaded(self) -> tuple[Any, Any]:
        if self.model is None:
            self.model, self.tokenizer = load_for_eval(self.ref, self.cfg.model_load, self.cfg.merge_lora)
            self.model.to(self.state.device)
        self.model.eval()
        return self.model, self.tokenizer

    def _pending(self, store: PredictionStore, samples: list[VideoSample], probe: Probe | None) -> list[VideoSample]:
        by_video = {s.video: s for s in samples}
        done = {video for video, r in store.load().items() if r.get("status") == "ok" and video in by_video
                and (probe is None or probe.matches(r, by_video[video]))}  # fmt: skip
        self.state.wait_for_everyone()  # every rank has read the store before any rank appends to it
        return [s for s in samples if s.video not in done]

    def run(self, samples: list[VideoSample], out: Path, fingerprint: dict[str, Any], probe: Probe | None) -> int:
        """Generate this rank's share of ``out``'s videos not predicted yet; returns those pending on all ranks."""
        cfg, state = self.cfg, self.state
        prepare_output(out, fingerprint, cfg.overwrite, state)
        store = PredictionStore(out, state.process_index)
        pending = self._pending(store, samples, probe)
        shard = pending[state.process_index :: state.num_processes]
        label = f"{cfg.task} {cfg.dataset_label}" + (f" probe={probe.name}" if probe else "")
        logger.info("%s: %d of %d videos already predicted; %d to go on this rank", label,
                    len(samples) - len(pending), len(samples), len(shard))  # fmt: skip
        if not shard:
            return len(pending)
        model, tokenizer = self._loaded()
        items = VideoItems(shard, cfg.video_root, self.video_config, probe, video_cache_dir=cfg.video_cache_dir,
                           video_processing=video_processing_for(model.config))  # fmt: skip
        done = (len(samples) - len(pending)) // state.num_processes
        run_predictions(items, self.make_predictor(cfg, model, tokenizer), store, cfg.task, batch_size=cfg.batch_size,
                        num_workers=cfg.num_workers, progress=cfg.progress and state.is_main_process,
                        description=label, already_done=done)  # fmt: skip
        self.generation_config = model.generation_config.to_diff_dict()
        return len(pending)
