"""Helpers for the downstream tests: private copies of the processed demo session, decoded clips."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np

import livereview


def copy_session(source: livereview.Session, directory: Path, *, own_recording: bool = False) -> livereview.Session:
    """A copy of a processed session under ``directory``, opened; with ``own_recording`` its recording
    is a private copy (``directory/recording.flac``) that a test may delete or change."""
    target = directory / source.session_id
    shutil.copytree(source.directory, target)
    if own_recording:
        recording = directory / f"recording{source.audio_path.suffix}"
        shutil.copyfile(source.audio_path, recording)
        metadata_path = target / "metadata.json"
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        metadata["audio"]["path"] = str(recording.resolve())
        metadata["audio"].pop("relative_path", None)
        metadata_path.write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    return livereview.open_session(target)


def decode(path: Path) -> tuple[np.ndarray, int, dict[str, str]]:
    """A clip's samples (channels, n) as float32, its sample rate and its tags."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames = [frame.to_ndarray() for frame in container.decode(stream)]
        tags = {**container.metadata, **stream.metadata}
        rate = stream.rate
    samples = np.concatenate(frames, axis=1)
    if samples.dtype == np.int16:
        samples = samples.astype(np.float32) / 32768.0
    return samples.astype(np.float32), rate, {k.lower(): v for k, v in tags.items()}


def find_segment(session: livereview.Session, words: str) -> str:
    """Id of the first segment whose text contains ``words`` (case-insensitive)."""
    view = session.view()
    hits = view[view["text"].str.lower().str.contains(words.lower(), regex=False, na=False)]
    assert len(hits), f"no segment says {words!r}"
    return str(hits.index[0])
