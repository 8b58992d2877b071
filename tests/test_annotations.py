"""VAU-Bench CSV → VideoSample: every quirk of the published files, the usable-row rules, errors, Hub mapping."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from vau_r1.data.annotations import (
    COLUMNS,
    AnnotationError,
    annotations_from_frame,
    load_annotations,
    load_sample_annotations,
    parse_correct_option,
    skip_reason,
)
from vau_r1.data.hub import SPLITS, hub_data_file, load_split, load_vau_bench
from vau_r1.data.schema import NORMAL_SPAN, TASKS, VideoSample

OPTIONS = ("A man climbs a fence", "Two cars collide", "A dog runs", "Nothing unusual")


def make_row(video: str = "msad_Fire_1.mp4", **overrides: str) -> dict[str, str]:
    """A complete, usable anomalous row; keyword names are columns with spaces as ``_``."""
    row = {
        "Video Name": video,
        "Question": "What happens?",
        "Option 1": OPTIONS[0],
        "Option 2": OPTIONS[1],
        "Option 3": OPTIONS[2],
        "Option 4": OPTIONS[3],
        "Correct Option": "B",
        "Key Object": "two cars",
        "Description": "Two cars collide at a junction.",
        "Reasoning": "### Specific Anomaly Type: Traffic_accident ### Conclusion: collision.",
        "Anomaly Class": "Traffic_accident",
        "Start Time": "2.5",
        "End Time": "8.0",
    }
    for key, value in overrides.items():
        row[key.replace("_", " ")] = value
    return row


def write_csv(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def load_one(tmp_path: Path, source: str | None = None, **overrides: str):
    """Table holding the single row ``make_row(**overrides)``, and that row's sample."""
    table = load_annotations(write_csv(tmp_path / "one.csv", [make_row(**overrides)]), source=source)
    return table, table.samples[0]


# --- real files -------------------------------------------------------------------------------------------


def test_real_test_msad_reproduces_paper_denominators(vau_bench_dir: Path) -> None:
    table = load_annotations(vau_bench_dir / "test_msad.csv", source="msad")
    assert len(table) == 240
    assert {task: len(table.usable(task)) for task in TASKS} == {"qa": 240, "tag": 120, "cls": 240, "reasoning": 240}
    assert len(table.usable("tag", "train")) == 240  # the 120 normal videos train on [-1, -1]
    assert table.source_counts() == {"msad": 240}
    assert sum(sample.is_normal for sample in table.samples) == 120
    # The 8 full-text answers ("D. Green trash bin ...") resolve to the letter whose option has that text.
    raw = pd.read_csv(vau_bench_dir / "test_msad.csv", dtype=str, keep_default_na=False)["Correct Option"]
    full_text = [(value, table.samples[index]) for index, value in enumerate(raw) if len(value) > 1]
    assert len(full_text) == 8
    for value, sample in full_text:
        assert value.startswith(f"{sample.answer}. ")
        assert sample.options[ord(sample.answer) - ord("A")] == value[3:]


@pytest.mark.parametrize(
    ("name", "rows", "normal"), [("ucf_subset_train.csv", 1194, 588), ("ucf_subset_val.csv", 299, 147)]
)
def test_real_ucf_subsets(vau_bench_dir: Path, name: str, rows: int, normal: int) -> None:
    table = load_annotations(vau_bench_dir / name)
    assert len(table) == rows
    assert table.source_counts() == {"ucf": rows}  # from the ucf_ prefix
    assert {task: len(table.usable(task)) for task in TASKS} == {"qa": rows, "tag": 0, "cls": rows, "reasoning": rows}
    # UCF train/val has no intervals: only the normal videos give a training target.
    assert len(table.usable("tag", "train")) == normal == sum(s.is_normal for s in table.samples)
    reasons = {row.reason for row in table.skipped("tag", "train")}
    assert reasons == {"-1,-1 times: anomaly without a temporal annotation"}


def test_default_pandas_types_give_the_same_samples(vau_bench_dir: Path) -> None:
    """A frame read with type inference (floats, NaN) parses like the all-string read."""
    path = vau_bench_dir / "test_msad.csv"
    inferred = annotations_from_frame(pd.read_csv(path), source="msad", origin=str(path))
    assert inferred.samples == load_annotations(path, source="msad").samples


# --- quirks, one row at a time ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("B", "B"),  # plain letter
        (" c ", "C"),  # lower case, padded
        ("D. Nothing unusual", "D"),  # letter + its option text (8 test_msad rows)
        ("D) nothing unusual", "D"),  # other punctuation, case-insensitive text
        ("A dog runs", "C"),  # full option text, no letter: matched to its letter
        ("two  cars collide", "B"),  # spacing and case ignored
        ("E", None),  # not a letter A-D
        ("B. A dog runs", None),  # letter and text disagree
        ("The fence", None),  # not an option
        ("-1", None),  # placeholder
        ("", None),  # empty
    ],
)
def test_parse_correct_option(value: str, expected: str | None) -> None:
    letter, problem = parse_correct_option(value, OPTIONS)
    assert letter == expected
    assert (problem is None) == (expected is not None)


@pytest.mark.parametrize("value", ["E", "B. A dog runs", "The fence"])
def test_bad_correct_option_is_unusable_for_qa_only(tmp_path: Path, value: str) -> None:
    table, sample = load_one(tmp_path, Correct_Option=value)
    assert sample.answer is None
    (skipped,) = table.skipped("qa")
    assert str(tmp_path / "one.csv") in skipped.reason and "row 1" in skipped.reason and repr(value) in skipped.reason
    assert all(len(table.usable(task)) == 1 for task in ("tag", "cls", "reasoning"))


@pytest.mark.parametrize(
    ("column", "tasks_lost"),
    [
        ("Question", {"qa"}),
        ("Option 3", {"qa"}),
        ("Correct Option", {"qa"}),
        ("Description", {"reasoning"}),
        ("Reasoning", {"reasoning"}),
        ("Key Object", set()),  # no task needs it
        ("Anomaly Class", {"cls"}),
    ],
)
@pytest.mark.parametrize("placeholder", ["-1", ""])
def test_placeholder_text_fields_become_none(tmp_path: Path, column: str, tasks_lost: set, placeholder: str) -> None:
    table = load_annotations(write_csv(tmp_path / "p.csv", [make_row(**{column.replace(" ", "_"): placeholder})]))
    sample = table.samples[0]
    field = {"Option 3": "options", "Correct Option": "answer", "Key Object": "key_object"}.get(column)
    field = field or {"Anomaly Class": "anomaly_class"}.get(column, column.lower())
    assert getattr(sample, field) is None
    assert {task for task in TASKS if not table.usable(task)} == tasks_lost
    for task in tasks_lost:
        (skipped,) = table.skipped(task)
        assert column in skipped.reason and ("-1" in skipped.reason if placeholder else "empty" in skipped.reason)


@pytest.mark.parametrize(
    ("label", "start", "end", "is_normal", "span_s", "tag_target"),
    [
        ("Traffic_accident", "2.5", "8", False, (2.5, 8.0), (2.5, 8.0)),  # ordinary anomaly
        ("Normal", "0.0", "0.0", True, None, NORMAL_SPAN),  # normal video sentinel
        ("Normal", "2", "150", True, (2.0, 150.0), NORMAL_SPAN),  # the 2 ECVA normal rows with an interval
        ("-1", "0.0", "0.0", True, None, NORMAL_SPAN),  # 27 UCF test rows: class -1, normal video
        ("Robbery", "-1.0", "-1.0", False, None, None),  # anomaly without a temporal annotation
        ("-1", "-1", "-1", None, None, None),  # nothing known
        ("Fire", "0", "12.25", False, (0.0, 12.25), (0.0, 12.25)),  # interval from the first second
    ],
)
def test_normal_and_span_sentinels(tmp_path: Path, label, start, end, is_normal, span_s, tag_target) -> None:
    table, sample = load_one(tmp_path, Anomaly_Class=label, Start_Time=start, End_Time=end)
    assert (sample.is_normal, sample.span_s, sample.tag_target) == (is_normal, span_s, tag_target)
    assert len(table.usable("tag", "eval")) == (span_s is not None)
    assert len(table.usable("tag", "train")) == (tag_target is not None)
    assert len(table.usable("qa")) == 1  # grounding problems never cost the other tasks


@pytest.mark.parametrize(
    ("start", "end", "bad"),
    [("1:05", "70", "'1:05'"), ("3.0", "abc", "'abc'"), ("nan", "4", "'nan'"), ("2", "inf", "'inf'")],
)
def test_unparseable_time_keeps_the_row(tmp_path: Path, start: str, end: str, bad: str) -> None:
    rows = [make_row("msad_A.mp4"), make_row("msad_B.mp4", Start_Time=start, End_Time=end)]
    path = write_csv(tmp_path / "t.csv", rows)
    table = load_annotations(path)
    assert [sample.video for sample in table.samples] == ["msad_A.mp4", "msad_B.mp4"]
    assert table.samples[1].span_s is None and table.samples[1].question == "What happens?"
    (skipped,) = table.skipped("tag")
    assert (skipped.row, skipped.video) == (2, "msad_B.mp4")
    assert f"{path} row 2" in skipped.reason and bad in skipped.reason
    assert len(table.usable("qa")) == 2


@pytest.mark.parametrize(("start", "end"), [("10", "5"), ("4", "4"), ("-2", "6")])
def test_invalid_interval_is_excluded_from_grounding(tmp_path: Path, start: str, end: str) -> None:
    table, sample = load_one(tmp_path, Start_Time=start, End_Time=end)
    assert sample.span_s is None
    assert "invalid interval" in table.skipped("tag")[0].reason


@pytest.mark.parametrize(
    ("written", "canonical"),
    [("Traffic accident", "Traffic_accident"), ("traffic_ACCIDENT", "Traffic_accident"),
     ("Food_Safety", "Food Safety"), ("people falling", "People_falling"), ("normal", "Normal")],
)  # fmt: skip
def test_class_spellings_are_canonicalised(tmp_path: Path, written: str, canonical: str) -> None:
    _, sample = load_one(tmp_path, Anomaly_Class=written)
    assert sample.anomaly_class == canonical


def test_unknown_class_is_unusable_for_cls(tmp_path: Path) -> None:
    table, sample = load_one(tmp_path, Anomaly_Class="Graffiti")
    assert sample.anomaly_class is None and sample.is_normal is None
    (skipped,) = table.skipped("cls")
    assert "'Graffiti'" in skipped.reason and "row 1" in skipped.reason
    assert len(table.usable("tag")) == 1  # its interval is still valid


# --- sources ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("video", "source", "expected"),
    [
        ("msad_Assault_3.mp4", None, "msad"),
        ("ucf_Normal_Videos001_x264.mp4", None, "ucf"),
        ("ecva_17.mp4", None, "ecva"),
        ("ecva_17.mp4", "ecva", "ecva"),  # explicit and prefix agree
        ("14.mp4", "ecva", "ecva"),  # test files: no prefix, explicit source
        ("MSAD_normal_testing_1.mp4", "msad", "msad"),  # upper-case MSAD_ is part of the name, not a prefix
        ("Abuse028_x264.mp4", None, None),  # neither: allowed, reported as unknown
    ],
)
def test_source(tmp_path: Path, video: str, source: str | None, expected: str | None) -> None:
    table, sample = load_one(tmp_path, source=source, Video_Name=video)
    assert sample.source == expected
    assert table.source_counts() == {expected or "unknown": 1}


def test_prefix_contradicting_explicit_source_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match=r"one\.csv row 1: video 'ucf_Abuse001_x264\.mp4' has the prefix 'ucf_'"):
        load_one(tmp_path, source="msad", Video_Name="ucf_Abuse001_x264.mp4")


def test_unknown_explicit_source_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Unknown source 'ucf_crime'.*'msad', 'ucf', 'ecva'"):
        load_one(tmp_path, source="ucf_crime")


# --- file-level errors ------------------------------------------------------------------------------------


def test_missing_columns_error_names_file_columns_and_header(tmp_path: Path) -> None:
    columns = tuple(column for column in COLUMNS if column not in ("Start Time", "Reasoning"))
    path = write_csv(tmp_path / "short.csv", [make_row()], columns=columns)
    with pytest.raises(AnnotationError) as error:
        load_annotations(path)
    message = str(error.value)
    assert str(path) in message and "['Reasoning', 'Start Time']" in message and ",".join(COLUMNS) in message


def test_duplicate_video_names_error_names_both_rows(tmp_path: Path) -> None:
    rows = [make_row("ecva_1.mp4"), make_row("ecva_2.mp4"), make_row("ecva_1.mp4")]
    with pytest.raises(AnnotationError, match=r"dup\.csv: duplicate Video Name 'ecva_1\.mp4' in rows 1 and 3"):
        load_annotations(write_csv(tmp_path / "dup.csv", rows))


def test_empty_video_name_and_missing_or_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match=r"row 1: empty Video Name"):
        load_one(tmp_path, Video_Name=" ")
    with pytest.raises(FileNotFoundError, match=r"absent\.csv not found"):
        load_annotations(tmp_path / "absent.csv")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81 not text")
    with pytest.raises(AnnotationError, match=r"binary\.csv: not a readable CSV"):
        load_annotations(tmp_path / "binary.csv")


def test_extra_columns_and_column_order_do_not_matter(tmp_path: Path) -> None:
    columns = ("Duration", *reversed(COLUMNS))
    table = load_annotations(write_csv(tmp_path / "x.csv", [{**make_row(), "Duration": "30"}], columns=columns))
    assert table.samples[0].answer == "B" and table.samples[0].span_s == (2.5, 8.0)


def test_unknown_task_or_purpose() -> None:
    sample = VideoSample("a.mp4", None, 1)
    with pytest.raises(ValueError, match=r"Unknown task 'grounding'; expected one of \['qa', 'tag', 'cls', 'reason"):
        skip_reason(sample, "grounding")
    with pytest.raises(ValueError, match=r"Unknown purpose 'test'"):
        skip_reason(sample, "qa", "test")  # type: ignore[arg-type]


# --- evaluation denominators of the files not available here ----------------------------------------------


def many(stem: str, count: int, start: str, end: str, **overrides: str) -> list[dict[str, str]]:
    """``count`` rows named ``<stem>000.mp4``, ``<stem>001.mp4``, ... with the given times."""
    return [make_row(f"{stem}{i:03d}.mp4", Start_Time=start, End_Time=end, **overrides) for i in range(count)]


def test_ucf_test_situation_gives_251_qa_and_124_tag(tmp_path: Path) -> None:
    """test_ucf_crime.csv: 290 rows, 39 with -1 Question/Correct Option/class (27 of them 0,0 normal videos)."""
    placeholder = dict.fromkeys(("Question", "Correct_Option", "Anomaly_Class"), "-1")
    rows = [
        *many("Stealing", 124, "3", "9", Anomaly_Class="Stealing"),
        *many("Normal_Videos_", 123, "0.0", "0.0", Anomaly_Class="Normal"),
        *many("Arson", 27, "0.0", "0.0", **placeholder),
        *many("Arrest", 12, "-1.0", "-1.0", **placeholder),
        *many("Robbery", 4, "-1", "-1", Anomaly_Class="Robbery"),
    ]
    table = load_annotations(write_csv(tmp_path / "test_ucf_crime.csv", rows), source="ucf")
    assert len(table) == 290 and table.source_counts() == {"ucf": 290}
    assert len(table.usable("qa")) == 251 and len(table.usable("tag")) == 124 and len(table.usable("cls")) == 251
    assert sum(sample.is_normal is True for sample in table.samples) == 150  # 123 Normal + 27 class -1 with 0,0
    assert {row.reason for row in table.skipped("qa")} == {"Question is the -1 placeholder (not annotated)"}


def test_ecva_test_situation_gives_402_tag(tmp_path: Path) -> None:
    """test_ecva.csv: 438 rows, 36 with -1,-1 times, 2 Normal rows that keep their intervals."""
    rows = [
        *many("", 400, "10", "50.5", Anomaly_Class="Fire"),
        make_row("normal_a.mp4", Anomaly_Class="Normal", Start_Time="2", End_Time="150"),
        make_row("normal_b.mp4", Anomaly_Class="Normal", Start_Time="0", End_Time="100"),
        *many("x", 36, "-1.0", "-1.0", Anomaly_Class="Assault"),
    ]
    table = load_annotations(write_csv(tmp_path / "test_ecva.csv", rows), source="ecva")
    assert len(table) == 438 and len(table.usable("tag")) == 402 and len(table.usable("qa")) == 438
    assert len(table.usable("tag", "train")) == 402  # 400 spans + 2 normal targets; the 36 unknown spans are out
    assert [s.tag_target for s in table.samples[400:402]] == [NORMAL_SPAN, NORMAL_SPAN]


# --- packaged sample and Hub mapping ----------------------------------------------------------------------


def test_packaged_sample_covers_the_quirks() -> None:
    table = load_sample_annotations()
    assert len(table) == 13 and Path(table.path).name == "sample_annotations.csv"
    assert table.source_counts() == {"msad": 4, "ucf": 4, "ecva": 4, "unknown": 1}
    assert {task: len(table.usable(task)) for task in TASKS} == {"qa": 11, "tag": 6, "cls": 11, "reasoning": 11}
    assert len(table.usable("tag", "train")) == 9
    by_video = {sample.video: sample for sample in table.samples}
    assert by_video["ecva_311.mp4"].answer == "D" and by_video["ecva_311.mp4"].anomaly_class == "Traffic_accident"
    assert by_video["msad_Water_incident_4.mp4"].answer == "C"  # full option text
    assert by_video["ecva_58.mp4"].span_s == (0.0, 100.0) and by_video["ecva_58.mp4"].is_normal
    assert by_video["ucf_Arson019_x264.mp4"].is_normal and by_video["ucf_Arson019_x264.mp4"].question is None


@pytest.mark.parametrize(
    ("split", "source"),
    [("train", None), ("val", None), ("test_msad", "msad"), ("test_ucf_crime", "ucf"), ("test_ecva", "ecva")],
)
def test_hub_split_mapping(split: str, source: str | None) -> None:
    assert SPLITS[split] == source
    assert hub_data_file(split) == f"annotations/{split}.csv"


def test_unknown_split_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"Unknown VAU-Bench split 'test'.*'test_ucf_crime', 'test_ecva'\]"):
        hub_data_file("test")
    with pytest.raises(FileNotFoundError, match=r"nor a VAU-Bench split \(train, val, test_msad, test_ucf_crime"):
        load_split("test_ucf")
    with pytest.raises(ValueError, match=r"Split 'test_msad' sets the source itself"):
        load_split("test_msad", source="ucf")


def test_hub_loader_shares_the_row_parser(tmp_path: Path) -> None:
    """``load_vau_bench`` on a local folder laid out like the Hub repository (no network)."""
    rows = [make_row("Assault_2.mp4"), make_row("Normal_1.mp4", Anomaly_Class="Normal", Start_Time="0", End_Time="0"),
            make_row("Fall_3.mp4", Key_Object="", Correct_Option="D. Nothing unusual", End_Time="7.25")]  # fmt: skip
    (tmp_path / "repo" / "annotations").mkdir(parents=True)
    path = write_csv(tmp_path / "repo" / "annotations" / "test_msad.csv", rows)
    hub = load_vau_bench("test_msad", repo_id=str(tmp_path / "repo"), cache_dir=tmp_path / "cache")
    assert hub.samples == load_annotations(path, source="msad").samples
    assert [sample.source for sample in hub.samples] == ["msad"] * 3
    assert hub.samples[2].key_object is None and hub.samples[2].answer == "D"
    assert load_split(path, source="msad").samples == hub.samples
