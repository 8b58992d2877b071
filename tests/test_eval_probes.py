"""``vau-r1 eval run probe=...`` end to end with stub models: a blind one scores a zero gap, a seeing one does not.

The stubs replace ``model.generate`` of the tiny model, so the whole pipeline runs for real (decoding, the
probe's video swap or frame permutation, patchifying, prompt encoding, records, resume, scoring, report):
only the answer is made up, from the prompt's text tokens (blind) or from the video patches (seeing).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable

import pytest
import torch
from hydra import compose, initialize_config_dir

from vau_r1.apps.evaluate import CONFIG_DIR, run
from vau_r1.bench import write_benchmark
from vau_r1.data.annotations import load_annotations
from vau_r1.data.video import VideoConfig, load_clip
from vau_r1.data.vision import video_inputs
from vau_r1.eval.probes import Probe
from vau_r1.model.builder import ModelConfig, load_model_and_processor
from vau_r1.model.tokenizer import VIDEO_PAD_TOKEN
from vau_r1.recipes.config import ConfigError

Answer = Callable[[list[int], torch.Tensor], str]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """6 synthetic test clips of 4 s (3 normal, 3 with an anomaly span: (2.5, 3.5), (0.5, 1.5), (2.5, 3.5))."""
    return write_benchmark(tmp_path_factory.mktemp("syn"), num_train=4, num_test=6, duration_s=4.0, fps=4.0)


@pytest.fixture(scope="module")
def tiny():
    return load_model_and_processor(ModelConfig(name_or_path="tiny-random", tiny={"seed": 0}))


def compose_eval(bench, out, task: str, *overrides: str):
    values = ["model=tiny-random", f"task={task}", f"output_dir={out}", f"annotations={bench.test_csv}",
              f"video_root={bench.video_dir}", "video_preset=tiny_cpu", "progress=false", "bootstrap_resamples=200",
              *overrides]  # fmt: skip
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose("eval", overrides=values)


def patch_means(video: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Mean of each temporal patch of one video's patches: a fingerprint of the clip and its frame order."""
    t, h, w = grid.tolist()
    return video.view(t, h * w, -1).mean(dim=(1, 2))


class StubGenerate:
    """Replaces ``model.generate``: ``answer(prompt text ids, temporal-patch means)`` per row; counts calls."""

    def __init__(self, model, tokenizer, answer: Answer):
        self.model, self.tokenizer, self.answer = model, tokenizer, answer
        self.video_id, self.eos = tokenizer.convert_tokens_to_ids(VIDEO_PAD_TOKEN), tokenizer.eos_token_id
        self.calls, self.seen = 0, []

    def __call__(self, **kwargs):
        self.calls += 1
        ids, mask, grids = kwargs["input_ids"], kwargs["attention_mask"], kwargs["video_grid_thw"]
        videos = kwargs["pixel_values_videos"].split(grids.prod(dim=1).tolist())
        rows = []
        for row, keep, video, grid in zip(ids.tolist(), mask.tolist(), videos, grids, strict=True):
            text = [token for token, k in zip(row, keep, strict=True) if k and token != self.video_id]
            means = patch_means(video, grid)
            self.seen.append(means)
            rows.append([*self.tokenizer.encode(self.answer(text, means), add_special_tokens=False), self.eos])
        width = max(map(len, rows))
        return torch.cat([ids, torch.tensor([r + [self.eos] * (width - len(r)) for r in rows])], dim=1)

    def __enter__(self):
        self.model.generate = self
        return self

    def __exit__(self, *exc):
        del self.model.generate


def blind(task: str) -> Answer:
    """An answer from the prompt's text alone (a hash of its tokens): the video is never looked at."""

    def answer(text: list[int], means: torch.Tensor) -> str:
        h = zlib.crc32(str(text).encode())
        if task == "qa":
            return f"<answer>{'ABCD'[h % 4]}</answer>"
        start = (h % 4) * 0.5  # the TAG prompt is the same for every 4 s clip: one constant span
        return f"<answer>Anomaly</answer><glue>[{start}, {start + 1.0}]</glue>"

    return answer


def seeing(bench, task: str) -> Answer:
    """A perfect model that reads the clip off the pixels: it recognises each test clip and its frame order.

    QA: the recognised clip's correct letter (frame order ignored). TAG: its decision and span, time-mirrored
    when the frames run backwards (a model that sees time).
    """
    config = VideoConfig.from_preset("tiny_cpu")
    known = []
    for s in load_annotations(bench.test_csv).samples:
        video = video_inputs(load_clip(bench.video_dir / s.video, config))
        known.append((patch_means(video.pixel_values_videos, video.video_grid_thw[0]), s))

    def answer(text: list[int], means: torch.Tensor) -> str:
        forward = [float((means - fp).abs().max()) for fp, _ in known]
        backward = [float((means - fp.flip(0)).abs().max()) for fp, _ in known]
        index = min(range(len(known)), key=lambda i: min(forward[i], backward[i]))
        sample, reversed_time = known[index][1], backward[index] < forward[index]
        if task == "qa":
            return f"<answer>{sample.answer}</answer>"
        if sample.span_s is None:
            return "<answer>Normal</answer><glue>[-1, -1]</glue>"
        start, end = (4.0 - sample.span_s[1], 4.0 - sample.span_s[0]) if reversed_time else sample.span_s
        return f"<answer>Anomaly</answer><glue>[{start}, {end}]</glue>"

    return answer


@pytest.mark.parametrize("task", ["qa", "tag"])
def test_a_model_that_ignores_the_video_scores_zero_gap(bench, tiny, tmp_path, task):
    model, tokenizer = tiny
    cfg = compose_eval(bench, tmp_path, task, "probe=[swap,reverse]", "tag_normal_videos=true", "batch_size=2")
    with StubGenerate(model, tokenizer, blind(task)) as stub:
        report = run(cfg, model=model, tokenizer=tokenizer)
    clean, swapped, flipped = stub.seen[:6], stub.seen[6:12], stub.seen[12:]
    donors = Probe.build("swap", load_annotations(bench.test_csv).samples, seed=0).donors
    order = [int(s.video[-8:-4]) for s in donors.values()]
    assert all(torch.equal(swapped[i], clean[j]) for i, j in enumerate(order)) and order != list(range(6))
    for f, c in zip(flipped, clean, strict=True):  # the frames, hence the temporal patches, run backwards
        assert torch.allclose(f, c.flip(0), atol=1e-5) and not torch.allclose(f, c)
    for name in ("swap", "reverse"):
        probe = report.probes[name]
        assert probe.metrics == report.metrics and set(probe.gap.values()) == {0.0}
        assert probe.changed_answers == 0.0 and probe.counts["compared"] == 6
        assert all(ci == [0.0, 0.0] for ci in probe.gap_ci95.values())
    if task == "tag":
        assert report.probes["reverse"].span["n_span_pairs"] == 6
        assert report.probes["reverse"].span["mean_abs_centre_shift_s"] == 0.0
        assert report.probes["reverse"].span["mirrored_miou"] == report.probes["reverse"].span["clean_mirrored_miou"]
    lines = (tmp_path / "probe_swap" / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line)["probe_video"] for line in lines] == [donors[s].video for s in donors]


def test_a_model_that_reads_the_video_loses_points_when_it_is_swapped(bench, tiny, tmp_path):
    model, tokenizer = tiny
    cfg = compose_eval(bench, tmp_path, "qa", "probe=[swap,reverse]")
    with StubGenerate(model, tokenizer, seeing(bench, "qa")):
        report = run(cfg, model=model, tokenizer=tokenizer)
    swap = report.probes["swap"]
    assert report.metrics["accuracy"] == 100.0 and report.ci95["accuracy"] == [100.0, 100.0]
    assert swap.gap["accuracy"] == 100.0 - swap.metrics["accuracy"] > 0 and swap.changed_answers > 0
    assert swap.gap_ci95["accuracy"][1] > 0
    assert report.probes["reverse"].gap["accuracy"] == 0.0  # it ignores frame order: reversing costs nothing
    best = report.baselines["best_constant_letter"].metrics["accuracy"]
    assert report.baselines["always_normal_option"].metrics["accuracy"] == 50.0 and best == pytest.approx(100 / 3)
    md = (tmp_path / "report.md").read_text()
    assert "## Probes" in md and "gap swap (95% CI)" in md and "## Blind baselines" in md and "always A" in md
    header, row = (tmp_path / "report.csv").read_text().splitlines()
    values = dict(zip(header.split(","), row.split(","), strict=True))
    assert float(values["swap_gap_accuracy"]) == swap.gap["accuracy"] and values["accuracy_ci95_lo"] == "100.0"


def test_a_model_that_sees_time_moves_its_span_under_reverse(bench, tiny, tmp_path):
    model, tokenizer = tiny
    cfg = compose_eval(bench, tmp_path, "tag", "probe=[reverse,swap]", "tag_normal_videos=true",
                       f"baseline_annotations={bench.train_csv}")  # fmt: skip
    with StubGenerate(model, tokenizer, seeing(bench, "tag")):
        report = run(cfg, model=model, tokenizer=tokenizer)
    assert report.metrics == {"miou": 100.0, "r@0.3": 100.0, "r@0.5": 100.0, "r@0.7": 100.0,
                              "decision_accuracy": 100.0}  # fmt: skip
    assert report.n == 3 and report.counts["decision_rows"] == 6
    reverse = report.probes["reverse"]
    assert reverse.metrics["miou"] == 0.0 and reverse.gap["miou"] == 100.0 and reverse.gap["decision_accuracy"] == 0
    assert reverse.span == {
        "mean_abs_centre_shift_s": pytest.approx(2.0),
        "n_span_pairs": 3,
        "mirrored_miou": pytest.approx(100.0),
        "clean_mirrored_miou": 0.0,
        "n_mirrored": 3,
    }
    assert report.probes["swap"].gap["decision_accuracy"] > 0  # normal and anomalous clips traded places
    assert report.baselines["always_normal"].metrics["decision_accuracy"] == 50.0
    assert report.baselines["always_anomaly_mean_span"].detail["reference"] == str(bench.train_csv)


# slow: three evaluations and a resume, about 5 s.
@pytest.mark.slow
def test_probes_resume_and_reuse_the_clean_predictions(bench, tiny, tmp_path):
    model, tokenizer = tiny
    samples = load_annotations(bench.test_csv).samples
    with StubGenerate(model, tokenizer, blind("qa")) as stub:
        run(compose_eval(bench, tmp_path, "qa", "probe=swap"), model=model, tokenizer=tokenizer)
        assert stub.calls == 12  # clean + swap, batch size 1
        report = run(compose_eval(bench, tmp_path, "qa", "probe=[swap,shuffle]"), model=model, tokenizer=tokenizer)
        assert stub.calls == 18 and report.counts["generated_this_run"] == 0  # only the shuffle probe was new
        assert report.probes["swap"].counts["generated_this_run"] == 0
        report = run(compose_eval(bench, tmp_path, "qa", "probe=[swap,shuffle]", "probe_seed=1"), model=model,
                     tokenizer=tokenizer)  # fmt: skip
    old, new = Probe.build("swap", samples, 0).donors, Probe.build("swap", samples, 1).donors
    moved = sum(old[v] is not new[v] for v in old)
    assert moved > 0 and report.probes["swap"].counts["generated_this_run"] == moved
    assert stub.calls == 18 + moved + 6 and report.settings["probe"] == ["swap", "shuffle"]


@pytest.mark.parametrize(
    ("task", "override", "message"),
    [
        ("qa", "probe=flip", r"probe='flip': unknown \['flip'\]; valid values: null, \['swap', 'reverse', 'shuf"),
        ("qa", "probe=[swap,swap]", "names a probe twice"),
        ("reasoning", "probe=swap", "probes score qa, tag and cls only"),
        ("qa", "bootstrap_resamples=-1", "bootstrap_resamples=-1 must be >= 0"),
        ("tag", "baseline_annotations=/nonexistent/train.csv", "baseline_annotations='/nonexistent/train.csv' is not"),
    ],
)
def test_bad_probe_settings_name_the_key(bench, tmp_path, task, override, message):
    with pytest.raises(ConfigError, match=message):
        run(compose_eval(bench, tmp_path, task, override))


def test_swap_of_a_single_row_is_refused(bench, tiny, tmp_path):
    with pytest.raises(ConfigError, match="probe='swap': probe=swap needs at least 2 rows"):
        run(compose_eval(bench, tmp_path, "qa", "probe=swap", "max_samples=1"), model=tiny[0], tokenizer=tiny[1])
