"""``vau-r1 data check``: JSON shape, human table, exit codes, video checks; and ``resolve_video``."""

from __future__ import annotations

import csv
import json
import sys
import types
from pathlib import Path

import pytest

from vau_r1.cli import main
from vau_r1.data.annotations import COLUMNS, load_annotations
from vau_r1.data.check import check_table, format_report
from vau_r1.data.paths import candidate_paths, resolve_video
from vau_r1.data.schema import VideoSample

ROW = {
    "Question": "What happens?",
    "Option 1": "A fire",
    "Option 2": "A fight",
    "Option 3": "A fall",
    "Option 4": "Nothing",
    "Correct Option": "A",
    "Key Object": "flames",
    "Description": "A bin catches fire.",
    "Reasoning": "### Conclusion: fire.",
    "Anomaly Class": "Fire",
    "Start Time": "1.0",
    "End Time": "4.0",
}


def write_annotations(path: Path, videos: list[str], columns: tuple[str, ...] = COLUMNS) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**ROW, "Video Name": video} for video in videos)
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["data", "check", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- annotation report ------------------------------------------------------------------------------------


def test_json_on_packaged_sample(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--json")
    assert code == 0
    report = json.loads(out)  # exactly one JSON object on stdout
    assert isinstance(report, dict) and "packaged sample" in err
    assert report["rows"] == 13
    assert report["usable"] == {"qa": 11, "tag": 6, "cls": 11, "reasoning": 11}
    assert report["source_counts"] == {"msad": 4, "ucf": 4, "ecva": 4, "unknown": 1}
    assert "videos" not in report  # no --videos, no video check
    assert all(set(row) == {"row", "video", "task", "reason"} for row in report["skipped"])
    skipped = {(row["row"], row["task"]) for row in report["skipped"]}
    assert skipped == {(6, "qa"), (10, "qa"), (2, "tag"), (4, "tag"), (5, "tag"), (6, "tag"), (9, "tag"), (12, "tag"),
                       (13, "tag"), (6, "cls"), (13, "cls"), (6, "reasoning"), (9, "reasoning")}  # fmt: skip


def test_json_on_real_test_msad(capsys: pytest.CaptureFixture[str], vau_bench_dir: Path) -> None:
    code, out, _ = run_cli(capsys, "--annotations", str(vau_bench_dir / "test_msad.csv"), "--source", "msad", "--json")
    report = json.loads(out)
    assert code == 0 and report["rows"] == 240
    assert report["usable"]["qa"] == 240 and report["usable"]["tag"] == 120
    assert len(report["skipped"]) == 120 and {row["task"] for row in report["skipped"]} == {"tag"}


def test_human_report_lists_every_skipped_row(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys)
    assert code == 0
    assert "rows: 13 (msad 4, ucf 4, ecva 4, unknown 1)" in out
    assert "usable rows (evaluation): qa 11, tag 6, cls 11, reasoning 11" in out
    header = next(line for line in out.splitlines() if line.startswith("row "))
    assert header.split() == ["row", "video", "task", "reason"]
    table = out[out.index(header) :].splitlines()[2:]
    assert len(table) == 13
    # file and row are columns already, so parse messages lose their "<file> row N:" prefix
    assert any(line.split()[:3] == ["12", "msad_People_falling_6.mp4", "tag"] and
               line.split(maxsplit=3)[3] == "unparseable Start Time '1:05' (expected seconds, e.g. 12.5)"
               for line in table)  # fmt: skip


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: write_annotations(d / "bad.csv", ["a.mp4"], COLUMNS[:-1]), "missing column(s) ['End Time']"),
        (lambda d: write_annotations(d / "dup.csv", ["a.mp4", "a.mp4"]), "Video Name 'a.mp4' in rows 1 and 2"),
        (lambda d: d / "absent.csv", "absent.csv not found"),
        (lambda d: write_annotations(d / "src.csv", ["ucf_a.mp4"]), "has the prefix 'ucf_' but source='msad'"),
    ],
)
def test_bad_annotations_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, setup, message: str) -> None:
    code, out, err = run_cli(capsys, "--annotations", str(setup(tmp_path)), "--source", "msad", "--json")
    assert code == 2 and out == ""
    assert message in err and err.startswith("vau-r1 data check: ")


def test_bad_arguments(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "--videos", str(tmp_path / "missing"))
    assert code == 2 and "is not a folder" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "check", "--decode-timeout-s", "0"])
    assert exit_info.value.code == 2
    assert main(["data"]) == 2  # no subcommand: help, exit 2
    assert "check" in capsys.readouterr().out


# --- video checks with a stand-in prober ------------------------------------------------------------------


@pytest.fixture
def fake_video_module(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, float]]:
    """Replace ``vau_r1.data.video`` by a loader that fails on files containing ``bad``; records its calls."""
    from vau_r1.data.sampling import VideoConfig

    calls: list[tuple[Path, float]] = []

    class VideoError(RuntimeError):
        pass

    def load_clip(path: Path, config: VideoConfig) -> types.SimpleNamespace:
        calls.append((Path(path), config.decode_timeout_s))
        assert config.on_error == "raise" and config.total_pixels == 3584 * 28 * 28  # training's rules
        if b"bad" in Path(path).read_bytes():
            raise VideoError(f"{path}: no video stream (corrupt file)")
        return types.SimpleNamespace(backend="decord")

    module = types.ModuleType("vau_r1.data.video")
    module.VideoConfig, module.VideoError, module.load_clip = VideoConfig, VideoError, load_clip
    monkeypatch.setitem(sys.modules, "vau_r1.data.video", module)
    return calls


def video_tree(root: Path) -> Path:
    """Flat, per-source and unprefixed layouts, one corrupt file and one missing video."""
    (root / "videos" / "ucf").mkdir(parents=True)
    (root / "videos" / "A.mp4").write_bytes(b"ok")  # msad_A.mp4 stored under its original name
    (root / "videos" / "ucf" / "B.mp4").write_bytes(b"ok")  # per-source folder
    (root / "videos" / "ecva_C.mp4").write_bytes(b"bad")  # does not decode
    return write_annotations(root / "ann.csv", ["msad_A.mp4", "ucf_B.mp4", "ecva_C.mp4", "D.mp4"])


def test_videos_missing_or_undecodable_exit_1(capsys, tmp_path: Path, fake_video_module) -> None:
    annotations = video_tree(tmp_path)
    args = ("--annotations", str(annotations), "--videos", str(tmp_path / "videos"), "--decode-timeout-s", "7.5")
    code, out, _ = run_cli(capsys, *args, "--json")
    videos = json.loads(out)["videos"]
    assert code == 1
    assert (videos["checked"], videos["ok"]) == (4, 2)
    assert [failure["video"] for failure in videos["failed"]] == ["ecva_C.mp4", "D.mp4"]
    assert "corrupt file" in videos["failed"][0]["error"]
    assert "D.mp4' (row 4) not found" in videos["failed"][1]["error"] and "--videos" in videos["failed"][1]["error"]
    assert [call[0].name for call in fake_video_module] == ["A.mp4", "B.mp4", "ecva_C.mp4"]
    assert {call[1] for call in fake_video_module} == {7.5}
    code, out, _ = run_cli(capsys, *args)
    assert code == 1 and "videos: checked 4, ok 2, failed 2" in out and "ecva_C.mp4" in out


def test_all_videos_ok_exit_0(capsys, tmp_path: Path, fake_video_module) -> None:
    (tmp_path / "videos" / "msad").mkdir(parents=True)
    (tmp_path / "videos" / "msad" / "msad_A.mp4").write_bytes(b"ok")
    annotations = write_annotations(tmp_path / "ann.csv", ["msad_A.mp4"])
    code, out, _ = run_cli(capsys, "--annotations", str(annotations), "--videos", str(tmp_path / "videos"), "--json")
    assert code == 0 and json.loads(out)["videos"] == {"checked": 1, "ok": 1, "failed": [], "backends": {"decord": 1}}


def test_report_object(tmp_path: Path) -> None:
    table = load_annotations(write_annotations(tmp_path / "ann.csv", ["msad_A.mp4", "B.mp4"]))
    report = check_table(table)
    assert (report.rows, report.exit_code, report.videos) == (2, 0, None)
    assert report.to_dict()["usable"] == {"qa": 2, "tag": 2, "cls": 2, "reasoning": 2}
    assert "skipped (evaluation rules): 0" in format_report(report)


# --- resolve_video ----------------------------------------------------------------------------------------


def test_resolve_video_order_and_layouts(tmp_path: Path) -> None:
    sample = VideoSample("msad_Assault_3.mp4", "msad", 7)
    assert [p.relative_to(tmp_path).as_posix() for p in candidate_paths(tmp_path, sample)] == [
        "msad_Assault_3.mp4", "Assault_3.mp4", "msad/msad_Assault_3.mp4", "msad/Assault_3.mp4"]  # fmt: skip
    (tmp_path / "msad").mkdir()
    for name in ("msad/Assault_3.mp4", "msad/msad_Assault_3.mp4", "Assault_3.mp4", "msad_Assault_3.mp4"):
        (tmp_path / name).write_bytes(b"")
        assert resolve_video(tmp_path, sample) == tmp_path / name  # each new file takes precedence over the last
    unprefixed = VideoSample("14.mp4", None, 1)
    assert candidate_paths(tmp_path, unprefixed) == [tmp_path / "14.mp4"]


def test_resolve_video_error_lists_paths_and_fix(tmp_path: Path) -> None:
    sample = VideoSample("ucf_Abuse001_x264.mp4", "ucf", 3)
    with pytest.raises(FileNotFoundError) as error:
        resolve_video(tmp_path, sample)
    message = str(error.value)
    assert all(str(path) in message for path in candidate_paths(tmp_path, sample))
    assert "row 3" in message and "--videos" in message and "data.video_root" in message
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_video(tmp_path / "nowhere", sample)


# --- end to end with the real loader ----------------------------------------------------------------------


def write_tiny_mp4(path: Path, num_frames: int = 8, width: int = 64, height: int = 64) -> None:
    av = pytest.importorskip("av", reason="PyAV is needed to write the test video")
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(num_frames):
            image = np.full((height, width, 3), index * 30, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def test_videos_end_to_end_with_real_loader(capsys, tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    write_tiny_mp4(tmp_path / "videos" / "good.mp4")
    (tmp_path / "videos" / "broken.mp4").write_bytes(b"\x00not a video" * 64)
    annotations = write_annotations(tmp_path / "ann.csv", ["good.mp4", "broken.mp4"])
    code, out, _ = run_cli(capsys, "--annotations", str(annotations), "--videos", str(tmp_path / "videos"), "--json")
    videos = json.loads(out)["videos"]
    assert code == 1 and (videos["checked"], videos["ok"]) == (2, 1)
    assert [failure["video"] for failure in videos["failed"]] == ["broken.mp4"]
    assert "broken.mp4" in videos["failed"][0]["error"]


def test_check_refuses_what_training_refuses(capsys, tmp_path: Path) -> None:
    """Too few frames and an aspect ratio over max_ratio decode fine, but training refuses them: so must the check."""
    from vau_r1.data.video import VideoConfig, VideoError, load_clip

    videos = tmp_path / "videos"
    videos.mkdir()
    write_tiny_mp4(videos / "good.mp4")
    write_tiny_mp4(videos / "one_frame.mp4", num_frames=1)
    write_tiny_mp4(videos / "wide.mp4", width=2048, height=8)  # 256:1 > max_ratio 200
    train = VideoConfig.from_preset("paper_train")
    for name, cause in (("one_frame.mp4", "too_short"), ("wide.mp4", "bad_aspect")):
        with pytest.raises(VideoError) as info:
            load_clip(videos / name, train)
        assert info.value.cause == cause  # what training's loading says
    annotations = write_annotations(tmp_path / "ann.csv", ["good.mp4", "one_frame.mp4", "wide.mp4"])
    code, out, _ = run_cli(capsys, "--annotations", str(annotations), "--videos", str(videos), "--json")
    videos_report = json.loads(out)["videos"]
    assert code == 1 and (videos_report["checked"], videos_report["ok"]) == (3, 1)
    errors = {failure["video"]: failure["error"] for failure in videos_report["failed"]}
    assert "(too_short)" in errors["one_frame.mp4"] and "(bad_aspect)" in errors["wide.mp4"]
    assert "one_frame.mp4" in errors["one_frame.mp4"] and "wide.mp4" in errors["wide.mp4"]


def test_check_applies_the_given_rules(tmp_path: Path) -> None:
    from vau_r1.data.video import VideoConfig

    (tmp_path / "videos").mkdir()
    write_tiny_mp4(tmp_path / "videos" / "short.mp4", num_frames=3)  # 3 frames: enough for nframes=2, not 4
    table = load_annotations(write_annotations(tmp_path / "ann.csv", ["short.mp4"]))
    strict = VideoConfig(fps=None, nframes=4)
    assert check_table(table, tmp_path / "videos", video_config=strict).exit_code == 1
    report = check_table(table, tmp_path / "videos", video_config=VideoConfig(fps=None, nframes=2))
    assert report.exit_code == 0 and report.videos.backends == {"decord": 1}
    assert "decoded by: decord 1" in format_report(report)


def test_video_preset_option_picks_the_rules(capsys, monkeypatch, tmp_path: Path) -> None:
    """``--video-preset`` hands that preset's rules to the check; an unknown preset is a one-line error."""
    from vau_r1.data import check
    from vau_r1.data.video import VideoConfig

    seen = []
    real = check.check_table
    monkeypatch.setattr(check, "check_table", lambda *a, **kw: seen.append(kw["video_config"]) or real(*a, **kw))
    (tmp_path / "videos").mkdir()
    write_tiny_mp4(tmp_path / "videos" / "clip.mp4")
    annotations = write_annotations(tmp_path / "ann.csv", ["clip.mp4"])
    args = ("--annotations", str(annotations), "--videos", str(tmp_path / "videos"), "--json")
    code, _, _ = run_cli(capsys, *args, "--video-preset", "tiny_cpu")
    assert code == 0 and seen == [VideoConfig.from_preset("tiny_cpu")]
    code, _, err = run_cli(capsys, *args, "--video-preset", "nope")
    assert code == 2 and "no video preset 'nope'" in err and "paper_train" in err
