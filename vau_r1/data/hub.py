"""VAU-Bench annotations from the Hugging Face Hub (``7xiang/VAU-Bench``), parsed like local CSVs."""

from __future__ import annotations

from pathlib import Path

from vau_r1.data.annotations import AnnotationTable, annotations_from_frame, load_annotations
from vau_r1.data.rows import COLUMNS

#: Hub dataset of the published annotations.
HUB_REPO_ID = "7xiang/VAU-Bench"
#: Hub splits → source of their videos. Test files have unprefixed names, so their source comes
#: from the split; train/val names carry a ``msad_``/``ucf_``/``ecva_`` prefix (``None`` here).
SPLITS: dict[str, str | None] = {
    "train": None,
    "val": None,
    "test_msad": "msad",
    "test_ucf_crime": "ucf",
    "test_ecva": "ecva",
}
#: ``datasets`` CSV-builder options that keep every cell a string, as the local loader does.
HUB_CSV_KWARGS: dict[str, object] = {"keep_default_na": False, "converters": dict.fromkeys(COLUMNS, str)}


def hub_data_file(split: str) -> str:
    """Path of a split's CSV inside the Hub dataset repository.

    >>> hub_data_file("test_ucf_crime")
    'annotations/test_ucf_crime.csv'
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown VAU-Bench split {split!r}; expected one of {list(SPLITS)}")
    return f"annotations/{split}.csv"


def load_vau_bench(
    split: str, repo_id: str = HUB_REPO_ID, revision: str | None = None, cache_dir: str | Path | None = None
) -> AnnotationTable:
    """Load one split from the Hub (or from a local copy of the dataset repository).

    Args:
        split: one of :data:`SPLITS`; test splits set the source of their unprefixed names.
        repo_id: Hub dataset id, or a local folder laid out like it (``annotations/<split>.csv``).
        revision: git revision (branch, tag or commit) of the dataset repository.
        cache_dir: ``datasets`` cache folder (default: the ``HF_DATASETS_CACHE`` setting).
    """
    data_file = hub_data_file(split)
    from datasets import load_dataset  # imported here: ``datasets`` is slow to import

    dataset = load_dataset(
        repo_id,
        data_files={split: data_file},
        split=split,
        revision=revision,
        cache_dir=None if cache_dir is None else str(cache_dir),
        **HUB_CSV_KWARGS,
    )
    if Path(repo_id).is_dir():
        origin = str(Path(repo_id) / data_file)
    else:
        origin = f"hf://datasets/{repo_id}{'@' + revision if revision else ''}/{data_file}"
    return annotations_from_frame(dataset.to_pandas(), source=SPLITS[split], origin=origin)


def load_split(path_or_split: str | Path, source: str | None = None) -> AnnotationTable:
    """Load a local CSV when ``path_or_split`` is an existing file, else the Hub split of that name.

    Raises:
        FileNotFoundError: neither an existing file nor a split name (the message lists the splits).
        ValueError: ``source`` given for a Hub split whose source differs (train/val have none).
    """
    if Path(path_or_split).is_file():
        return load_annotations(path_or_split, source=source)
    split = str(path_or_split)
    if split not in SPLITS:
        raise FileNotFoundError(
            f"{split!r} is neither an existing annotation file nor a VAU-Bench split ({', '.join(SPLITS)})"
        )
    if source is not None and source != SPLITS[split]:
        raise ValueError(f"Split {split!r} sets the source itself ({SPLITS[split]}); drop source={source!r}")
    return load_vau_bench(split)
