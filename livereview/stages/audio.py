"""Audio input: probing and streaming decode to 16 kHz mono with PyAV.

Anything FFmpeg decodes (wav, flac, mp3, m4a, ogg, video containers), at any
sample rate and channel count, is decoded block by block, so a four-hour
recording never sits in memory whole.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

SAMPLE_RATE = 16_000
Pathlike = str | os.PathLike[str]


class AudioError(ValueError):
    """The file cannot be used as a recording (not audio, undecodable or empty)."""


@dataclass(frozen=True)
class AudioInfo:
    """What a recording is, before decoding it."""

    path: Path
    duration: float
    sample_rate: int
    channels: int
    codec: str

    def to_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "duration": round(self.duration, 3),
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "codec": self.codec,
        }


def _existing(path: Pathlike) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        msg = f"audio file not found: {path}"
        raise FileNotFoundError(msg)
    if path.is_dir():
        msg = f"expected an audio file, got a directory: {path}"
        raise IsADirectoryError(msg)
    return path


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as error:
        msg = f"cannot decode {path}: {error}. Pass a file FFmpeg can read (wav, flac, mp3, m4a, ogg, mp4, ...)."
        raise AudioError(msg) from error
    if not container.streams.audio:
        container.close()
        msg = f"{path} has no audio stream"
        raise AudioError(msg)
    return container


def probe(path: Pathlike) -> AudioInfo:
    """Read a recording's duration, rate, channels and codec without decoding it all.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    AudioError
        The file is not decodable audio, or holds no audio.
    """
    path = _existing(path)
    with _open(path) as container:
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = sum(len(block) for block in iter_audio(path)) / SAMPLE_RATE
        info = AudioInfo(path, duration, stream.rate or 0, stream.channels or 0, stream.codec_context.name)
    if info.duration <= 0:
        msg = f"{path} holds no audio (duration 0 s)"
        raise AudioError(msg)
    return info


def iter_audio(path: Pathlike, block_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """Decode ``path`` to 16 kHz mono float32 blocks of about ``block_seconds``.

    Yields
    ------
    block : (num_samples,) np.ndarray
        Consecutive, gap-free float32 samples in [-1, 1].
    """
    path = _existing(path)
    block_size = int(block_seconds * SAMPLE_RATE)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    pending: list[np.ndarray] = []
    pending_size = 0
    with _open(path) as container:
        stream = container.streams.audio[0]
        try:
            for frame in _decoded_frames(container, stream, resampler):
                samples = frame.to_ndarray().reshape(-1)
                pending.append(samples)
                pending_size += samples.size
                if pending_size >= block_size:
                    block = np.concatenate(pending)
                    yield block[:block_size]
                    pending, pending_size = [block[block_size:]], block.size - block_size
        except av.FFmpegError as error:
            msg = f"decoding {path} failed: {error}"
            raise AudioError(msg) from error
    if pending_size:
        yield np.concatenate(pending)


def _decoded_frames(
    container: av.container.InputContainer, stream: av.AudioStream, resampler: av.AudioResampler
) -> Iterator[av.AudioFrame]:
    for frame in container.decode(stream):
        frame.pts = None  # let the resampler count samples; some containers carry gaps
        yield from resampler.resample(frame)
    yield from resampler.resample(None)


def load_clip(path: Pathlike, start: float, end: float) -> np.ndarray:
    """Decode only ``[start, end)`` seconds of ``path`` as 16 kHz mono float32.

    Seeks close to ``start`` first, so a clip late in a long recording is cheap.
    """
    if end <= start:
        msg = f"clip {start:.3f}-{end:.3f} s is empty: start must come before end"
        raise ValueError(msg)
    path = _existing(path)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    with _open(path) as container:
        stream = container.streams.audio[0]
        seek_to = max(0.0, start - 1.0)
        container.seek(int(seek_to * av.time_base), any_frame=False)
        pieces: list[np.ndarray] = []
        position: float | None = None
        for frame in container.decode(stream):
            if position is None:
                position = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
            for out in resampler.resample(frame):
                pieces.append(out.to_ndarray().reshape(-1))
            if position + sum(p.size for p in pieces) / SAMPLE_RATE >= end:
                break
    audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    offset = round((start - (position or 0.0)) * SAMPLE_RATE)
    return audio[max(offset, 0) : max(offset, 0) + round((end - start) * SAMPLE_RATE)]


def file_hash(path: Pathlike, block_size: int = 1 << 20) -> str:
    """SHA-256 of the file's bytes, to tell whether a session's recording changed."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        while block := stream.read(block_size):
            digest.update(block)
    return digest.hexdigest()
