"""A decode cache on disk: each video's sampled, resized frames, decoded once and read back by every process.

A ``paper_train`` clip of 60 s costs ~3 s of CPU to decode and resize, paid again every epoch, by every rank
and by evaluation. :func:`load_clip_cached` reads the clip from ``cache_dir`` when an entry exists and is
intact, else decodes it with :func:`vau_r1.data.video.load_clip` and writes the entry. A hit returns a
:class:`~vau_r1.data.video.VideoClip` equal to a fresh decode bit for bit (frames, timestamps, every field;
``path`` is the path asked for).

The key (:func:`entry_key`) is a hash of
  * the file's content fingerprint: its size and a BLAKE2b of its first and last MiB and of 8 blocks of 64 KiB
    spread over the middle (a copied or moved file still hits; any re-encoded or replaced file misses: its
    container index changes; residual risk: a same-size edit only inside unsampled middle bytes),
  * every :class:`~vau_r1.data.video.VideoConfig` field that changes the frames (all but ``decode_timeout_s``,
    ``max_retries`` and ``on_error``; the backends are in, as decord and PyAV can differ by a level),
  * the versions of torch (the resize), av and decord, and :data:`FORMAT_VERSION`.

An entry is a folder ``<cache_dir>/<key[:2]>/<key>/`` with ``frames.npy`` (uint8 [T, 3, H, W]: the resized
frames are integral 0..255, so uint8 is exact; read with ``np.load(mmap_mode="r")``) and ``meta.json``
(every clip field, the settings, the source fingerprint, the shape and a CRC-32 of the frames). It is written
into a temporary folder and renamed into place, so a kill never leaves a readable torn entry and ranks that
write the same entry at once are safe (the first rename wins). An entry whose files are missing, whose shape,
size or CRC do not match, is logged, counted (``corrupt``) and replaced by a fresh decode: never silently wrong.

Example::

    clip = load_clip_cached("video.mp4", VideoConfig.from_preset("paper_train"), "/scratch/video_cache")
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import zlib
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vau_r1.data.decoding import check_file
from vau_r1.data.video import VideoClip, VideoConfig, load_clip

__all__ = ["FORMAT_VERSION", "cache_counts", "entry_dir", "entry_key", "load_clip_cached", "read_entry",
           "sweep_partial", "write_entry"]  # fmt: skip

logger = logging.getLogger(__name__)

#: Bumped whenever the entry layout or the meaning of a field changes: older entries then simply miss.
FORMAT_VERSION = 1
#: VideoConfig fields that cannot change the decoded frames (how long to wait, how often to retry, what to do).
_NOT_IN_KEY = frozenset({"decode_timeout_s", "max_retries", "on_error"})
_HEAD_BYTES = 1 << 20
_BLOCK_BYTES = 64 << 10
_MIDDLE_BLOCKS = 8
_COUNTS: Counter[str] = Counter()


def cache_counts() -> dict[str, int]:
    """This process's ``hit``/``miss``/``write``/``corrupt`` counts (each DataLoader worker keeps its own)."""
    return dict(_COUNTS)


def file_fingerprint(path: str | Path) -> dict[str, Any]:
    """Size and a BLAKE2b of the first/last MiB and 8 evenly spread 64 KiB blocks (a ~2.5 MiB read)."""
    size = os.path.getsize(path)
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as file:
        if size <= 2 * _HEAD_BYTES + _MIDDLE_BLOCKS * _BLOCK_BYTES:
            digest.update(file.read())
        else:
            step = (size - 2 * _HEAD_BYTES) // (_MIDDLE_BLOCKS + 1)
            offsets = [0, *(_HEAD_BYTES + step * (i + 1) for i in range(_MIDDLE_BLOCKS)), size - _HEAD_BYTES]
            for offset in offsets:
                file.seek(offset)
                digest.update(file.read(_HEAD_BYTES if offset in (0, size - _HEAD_BYTES) else _BLOCK_BYTES))
    return {"size": size, "blake2b": digest.hexdigest()}


@lru_cache(maxsize=1)
def _library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in ("torch", "av", "decord"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def key_settings(config: VideoConfig) -> dict[str, Any]:
    """The sampling settings an entry depends on: the frame-changing config fields and the library versions."""
    fields = {k: v for k, v in config.to_dict().items() if k not in _NOT_IN_KEY}
    return {"format": FORMAT_VERSION, "video": fields, "libraries": _library_versions()}


def entry_key(fingerprint: dict[str, Any], config: VideoConfig) -> str:
    """The hex key of a file fingerprint under ``config``'s settings."""
    text = json.dumps({"file": fingerprint, **key_settings(config)}, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


def entry_dir(cache_dir: str | Path, key: str) -> Path:
    """Folder of entry ``key``: ``<cache_dir>/<key[:2]>/<key>``."""
    return Path(cache_dir) / key[:2] / key


def _clip_meta(clip: VideoClip) -> dict[str, Any]:
    return {"timestamps_s": list(clip.timestamps_s), "frame_indices": list(clip.frame_indices),
            "sample_fps": clip.sample_fps, "duration_s": clip.duration_s, "video_fps": clip.video_fps,
            "total_frames": clip.total_frames, "original_size": list(clip.original_size),
            "backend": clip.backend}  # fmt: skip


def write_entry(folder: Path, clip: VideoClip, meta: dict[str, Any]) -> bool:
    """Write ``clip`` as entry ``folder`` atomically; ``False`` when it cannot be stored exactly as uint8.

    Another process that installed the same entry first wins; this one's copy is discarded.
    """
    frames = clip.frames
    as_uint8 = frames.clamp(0, 255).to(torch.uint8)
    if not torch.equal(as_uint8.float(), frames):  # not integral 0..255: never store what would read back wrong
        logger.warning("not caching %s: its frames are not integral values in 0..255", clip.path)
        return False
    array = np.ascontiguousarray(as_uint8.numpy())
    record = {**meta, **_clip_meta(clip), "shape": list(array.shape), "crc32": zlib.crc32(array.data)}
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a shared cache is read by other users' runs too
        with open(tmp / "frames.npy", "wb") as file:
            np.save(file, array)
            file.flush()
            os.fsync(file.fileno())
        (tmp / "meta.json").write_text(json.dumps(record))
        os.rename(tmp, folder)  # atomic; fails when the entry already exists (another rank wrote it)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    return True


def sweep_partial(cache_dir: str | Path, older_than_s: float = 3600.0) -> int:
    """Delete the temporary folders of writes killed mid-way (older than ``older_than_s``); returns how many.

    A write in progress is younger than any decode takes, so an old ``.<key>.tmp-*`` or ``.corrupt-*``
    folder belongs to a process that died before its rename; it is never read, only taking space.
    """
    import time

    cutoff, swept = time.time() - older_than_s, 0
    for tmp in Path(cache_dir).glob("??/.*"):
        if (".tmp-" in tmp.name or ".corrupt-" in tmp.name) and tmp.is_dir() and tmp.stat().st_mtime < cutoff:
            shutil.rmtree(tmp, ignore_errors=True)
            swept += 1
    return swept


class CorruptEntry(ValueError):
    """An entry whose files are missing or do not match its record."""


def read_entry(folder: Path, key: str, path: str) -> VideoClip:
    """The clip stored in entry ``folder`` (``path``: the file asked for).

    Raises:
        FileNotFoundError: no entry.
        CorruptEntry: a file is missing, unreadable or does not match the record (shape, size, CRC, key).
    """
    if not folder.is_dir():
        raise FileNotFoundError(folder)
    try:
        meta = json.loads((folder / "meta.json").read_text())
        mapped = np.load(folder / "frames.npy", mmap_mode="r")  # header and size checked before any read
        shape = tuple(meta["shape"])
        if meta.get("key") != key or mapped.dtype != np.uint8 or mapped.shape != shape or len(shape) != 4:
            found = f"key {meta.get('key')}, {mapped.dtype} {mapped.shape}"
            raise CorruptEntry(f"{found}; expected key {key}, uint8 {shape}")
        array = np.array(mapped)
        if zlib.crc32(array.data) != meta["crc32"]:
            raise CorruptEntry("the frames' CRC-32 does not match the record")
        return VideoClip(
            frames=torch.from_numpy(array).float(), timestamps_s=tuple(meta["timestamps_s"]),
            frame_indices=tuple(meta["frame_indices"]), sample_fps=meta["sample_fps"],
            duration_s=meta["duration_s"], video_fps=meta["video_fps"], total_frames=meta["total_frames"],
            path=path, original_size=tuple(meta["original_size"]), backend=meta["backend"],
        )  # fmt: skip
    except CorruptEntry:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError) as error:
        raise CorruptEntry(f"{type(error).__name__}: {error}") from error


def _discard(folder: Path) -> None:
    """Move a corrupt entry aside (atomically) and delete it; a rank that got there first already did."""
    aside = folder.with_name(f".{folder.name}.corrupt-{os.getpid()}")
    try:
        os.rename(folder, aside)
    except OSError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def load_clip_cached(path: str | Path, config: VideoConfig | None = None,
                     cache_dir: str | Path | None = None) -> VideoClip:  # fmt: skip
    """:func:`~vau_r1.data.video.load_clip`, read from the decode cache ``cache_dir`` (or written into it).

    With ``cache_dir=None`` this is plain ``load_clip``. A corrupt entry is logged, replaced and counted;
    a video that fails to decode is not cached (the same :class:`~vau_r1.data.video.VideoError` every time).
    """
    config = config or VideoConfig()
    if cache_dir is None:
        return load_clip(path, config)
    path_str = check_file(path)
    fingerprint = file_fingerprint(path_str)
    key = entry_key(fingerprint, config)
    folder = entry_dir(cache_dir, key)
    try:
        clip = read_entry(folder, key, path_str)
        _COUNTS["hit"] += 1
        return clip
    except FileNotFoundError:
        _COUNTS["miss"] += 1
    except CorruptEntry as error:
        logger.warning("video cache entry %s of %s is corrupt (%s); decoding the video again", folder, path_str, error)
        _COUNTS["corrupt"] += 1
        _discard(folder)
    clip = load_clip(path_str, config)
    meta = {"key": key, "format": FORMAT_VERSION, "source": {"path": path_str, **fingerprint},
            "settings": key_settings(config)}  # fmt: skip
    if write_entry(folder, clip, meta):
        _COUNTS["write"] += 1
    return clip
