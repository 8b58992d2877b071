"""Finding a sample's video file under the folder where the user keeps the VAU-Bench videos.

Train/val names carry a source prefix (``msad_Assault_3.mp4``) that the original datasets do not,
and people lay out their video folders either flat or one sub-folder per source. So a video is
looked up, in this order, as::

    <root>/<video>               e.g. <root>/msad_Assault_3.mp4
    <root>/<video_id>            e.g. <root>/Assault_3.mp4
    <root>/<source>/<video>      e.g. <root>/msad/msad_Assault_3.mp4
    <root>/<source>/<video_id>   e.g. <root>/msad/Assault_3.mp4
"""

from __future__ import annotations

from pathlib import Path

from vau_r1.data.schema import VideoSample

__all__ = ["candidate_paths", "resolve_video"]


def candidate_paths(root: str | Path, sample: VideoSample) -> list[Path]:
    """Every path :func:`resolve_video` tries for ``sample``, in order, without duplicates.

    >>> sample = VideoSample("msad_Assault_3.mp4", "msad", 1)
    >>> [str(path) for path in candidate_paths("videos", sample)]  # doctest: +NORMALIZE_WHITESPACE
    ['videos/msad_Assault_3.mp4', 'videos/Assault_3.mp4', 'videos/msad/msad_Assault_3.mp4',
     'videos/msad/Assault_3.mp4']
    """
    root = Path(root).expanduser()
    folders = [root] if sample.source is None else [root, root / sample.source]
    paths: list[Path] = []
    for folder in folders:
        for name in (sample.video, sample.video_id):
            if folder / name not in paths:
                paths.append(folder / name)
    return paths


def resolve_video(root: str | Path, sample: VideoSample) -> Path:
    """Path of ``sample``'s video file under ``root``: the first of :func:`candidate_paths` that exists.

    Args:
        root: folder holding the videos (flat, or one sub-folder per source: ``msad/``, ``ucf/``, ``ecva/``).
        sample: the annotation row; its ``video``, ``video_id`` and ``source`` give the names tried.

    Returns:
        The existing file.

    Raises:
        FileNotFoundError: no candidate exists; the message lists every path tried and the fix.
    """
    tried = candidate_paths(root, sample)
    for path in tried:
        if path.is_file():
            return path
    hint = "" if Path(root).expanduser().is_dir() else f" (the folder {root} does not exist)"
    listing = "\n  ".join(str(path) for path in tried)
    raise FileNotFoundError(
        f"Video {sample.video!r} (row {sample.row}) not found under {root}{hint}; tried:\n  {listing}\n"
        "Pass --videos (or set data.video_root) to the folder holding the video files, "
        "laid out flat or with one sub-folder per source (msad/, ucf/, ecva/)."
    )
