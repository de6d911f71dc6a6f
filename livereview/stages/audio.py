"""Audio input: probing and streaming decode to 16 kHz mono with PyAV.

Anything FFmpeg decodes (wav, flac, mp3, m4a, ogg, video containers), at any
sample rate and channel count, is decoded block by block, so a four-hour
recording never sits in memory whole.

Recordings as they really arrive:

- **Damaged files** decode as far as the data allows. A packet that does not decode
  becomes silence of its length (so every later time stays true), a file cut short
  ends where its data ends, and each is reported as a :class:`Damage` naming the time
  and the byte offset: a header that claims more than the file holds, a torn last Ogg
  page, an undecodable frame.
- **Recordings still being written** are followed by :func:`follow_audio`: reading
  blocks at the end of the file until the recorder writes more, and ends once the file
  has not grown for an idle timeout (or when asked to stop). The samples are the ones a
  read of the finished file gives.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import mutagen
import numpy as np
from mutagen.ogg import OggPage

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
_HASH_BLOCK = 1 << 20
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


@dataclass(frozen=True)
class Damage:
    """A stretch of a recording that could not be decoded.

    Parameters
    ----------
    time : float
        Seconds into the recording where the damage starts; audio before it is intact.
    byte_offset : int or None
        Where in the file it is, when known.
    message : str
        What is wrong, in words.
    """

    time: float
    byte_offset: int | None
    message: str

    def describe(self) -> str:
        """``at 1:42.9 (byte 1,881,538): <message>``."""
        minutes, seconds = divmod(max(self.time, 0.0), 60)
        where = f"at {int(minutes)}:{seconds:04.1f}"
        if self.byte_offset is not None:
            where += f" (byte {self.byte_offset:,})"
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"time": round(self.time, 3), "byte_offset": self.byte_offset, "message": self.message}


#: Receives each damaged stretch as it is found.
DamageCallback = Callable[[Damage], Any]
#: Seconds a header may claim beyond the decoded audio before the difference counts as missing data.
CLAIM_TOLERANCE = 0.5


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
        try:
            info = AudioInfo(path, duration, stream.rate or 0, stream.channels or 0, stream.codec_context.name)
        except AttributeError as error:  # a damaged header: PyAV has no codec context to read them from
            msg = f"{path} is not decodable audio: its audio stream has no usable header ({error})"
            raise AudioError(msg) from error
    if info.duration <= 0:
        msg = f"{path} holds no audio (duration 0 s)"
        raise AudioError(msg)
    return info


def iter_audio(
    path: Pathlike, block_seconds: float = 30.0, *, on_damage: DamageCallback | None = None
) -> Iterator[np.ndarray]:
    """Decode ``path`` to 16 kHz mono float32 blocks of about ``block_seconds``.

    Parameters
    ----------
    path : path
        The recording.
    block_seconds : float
        Length of the blocks yielded.
    on_damage : callable, optional
        Called with each :class:`Damage` found; without one, a damaged recording
        raises :class:`AudioError` at the damage instead.

    Yields
    ------
    block : (num_samples,) np.ndarray
        Consecutive, gap-free float32 samples in [-1, 1].
    """
    path = _existing(path)
    report = on_damage or _raise_damage(path)
    decoded = 0
    with _open(path) as container:
        for block in _blocks(container, block_seconds, report):
            decoded += block.size
            yield block
        claimed = _claimed_duration(path, container)
    seconds = decoded / SAMPLE_RATE
    if claimed - seconds > CLAIM_TOLERANCE:
        message = (
            f"the file holds {seconds:.1f} s of audio but its header claims {claimed:.1f} s: "
            "the rest is missing (a recording or copy that was cut short)"
        )
        report(Damage(seconds, path.stat().st_size, message))
    torn = _torn_ogg_page(path) if container.format.name == "ogg" else None
    if torn is not None:
        report(torn)


def follow_audio(
    path: Pathlike,
    block_seconds: float = 1.0,
    *,
    idle_timeout: float = 30.0,
    stop: threading.Event | None = None,
    poll: float = 0.1,
    on_damage: DamageCallback | None = None,
) -> Iterator[np.ndarray]:
    """Decode a recording that another program is still writing, as its audio arrives.

    Blocks wait at the end of the file for more; the stream ends once the file has not
    grown for ``idle_timeout`` seconds, or when ``stop`` is set. WAV, FLAC, Ogg
    (Vorbis, Opus), Matroska and WebM as recorders write them are read (a WAV header
    whose sizes are still placeholders included); formats that keep their index at the
    end of the file (MP4) cannot be followed.

    Parameters
    ----------
    path : path
        The growing recording; it must exist and hold its header already.
    block_seconds : float
        Length of the blocks yielded (short, so chunks start as soon as their audio is there).
    idle_timeout : float
        Seconds without growth after which the recording counts as finished.
    stop : threading.Event, optional
        Set it to end the stream at the next poll.
    poll : float
        Seconds between looks at the file while waiting for it to grow.
    on_damage : callable, optional
        As for :func:`iter_audio` (a recorder that died mid-frame leaves a damaged tail).
    """
    path = _existing(path)
    report = on_damage or _raise_damage(path)
    source = GrowingFile(path, idle_timeout=idle_timeout, stop=stop or threading.Event(), poll=poll)
    try:
        container = av.open(source, mode="r")
    except av.FFmpegError as error:
        source.close()
        msg = f"cannot follow {path}: {error}. It must start with the header of a format FFmpeg reads."
        raise AudioError(msg) from error
    with source, container:
        if not container.streams.audio:
            msg = f"{path} has no audio stream"
            raise AudioError(msg)
        yield from _blocks(container, block_seconds, report)


class GrowingFile:
    """A file read while another program appends to it: :meth:`read` waits at the end for more.

    It reads as one stream with no seeking, so demuxers never look for the end of a
    file that has none yet. The end comes when the file has not grown for
    ``idle_timeout`` seconds, or once ``stop`` is set.
    """

    def __init__(self, path: Path, *, idle_timeout: float, stop: threading.Event, poll: float) -> None:
        self.path = path
        self.idle_timeout = idle_timeout
        self.stop = stop
        self.poll = poll
        self._file = path.open("rb")
        self._grew = time.monotonic()

    def read(self, size: int = -1) -> bytes:
        while True:
            data = self._file.read(size)
            if data:
                self._grew = time.monotonic()
                return data
            if self.stop.is_set() or time.monotonic() - self._grew >= self.idle_timeout:
                return b""
            self.stop.wait(self.poll)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> GrowingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _blocks(
    container: av.container.InputContainer, block_seconds: float, report: DamageCallback
) -> Iterator[np.ndarray]:
    """The container's first audio stream as 16 kHz mono blocks, damaged packets replaced by silence."""
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    block_size = max(int(block_seconds * SAMPLE_RATE), 1)
    pending: list[np.ndarray] = []
    pending_size = 0
    for samples in _decoded_samples(container, stream, resampler, report):
        pending.append(samples)
        pending_size += samples.size
        if pending_size >= block_size:
            block = np.concatenate(pending)
            yield block[:block_size]
            pending, pending_size = [block[block_size:]], block.size - block_size
    if pending_size:
        yield np.concatenate(pending)


def _decoded_samples(
    container: av.container.InputContainer,
    stream: av.AudioStream,
    resampler: av.AudioResampler,
    report: DamageCallback,
) -> Iterator[np.ndarray]:
    decoded = 0  # 16 kHz samples so far: where the next ones sit on the timeline
    packet_time = 0.0
    try:
        for packet in container.demux(stream):
            if packet.pts is not None and stream.time_base is not None:
                packet_time = float(packet.pts * stream.time_base)
            try:
                frames = packet.decode()
            except av.FFmpegError as error:
                length = float(packet.duration * stream.time_base) if packet.duration and stream.time_base else 0.0
                message = f"a frame does not decode ({error}); {length:.3f} s of silence stand in for it"
                report(Damage(decoded / SAMPLE_RATE, packet.pos, message))
                gap = round(length * SAMPLE_RATE)
                decoded += gap
                yield np.zeros(gap, dtype=np.float32)
                continue
            for frame in frames:
                frame.pts = None  # let the resampler count samples; some containers carry gaps
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    decoded += samples.size
                    yield samples
    except av.FFmpegError as error:
        report(Damage(decoded / SAMPLE_RATE, None, f"the file cannot be read past {packet_time:.1f} s ({error})"))
    try:
        flushed = resampler.resample(None)
    except av.FFmpegError as error:  # e.g. a header claiming a channel count no layout has
        report(Damage(decoded / SAMPLE_RATE, None, f"the audio cannot be converted to 16 kHz mono ({error})"))
        return
    for out in flushed:
        yield out.to_ndarray().reshape(-1)


def _raise_damage(path: Path) -> DamageCallback:
    def refuse(damage: Damage) -> None:
        msg = f"decoding {path} failed {damage.describe()}"
        raise AudioError(msg)

    return refuse


def _claimed_duration(path: Path, container: av.container.InputContainer) -> float:
    """The longest duration the file's headers claim (FFmpeg's, and the tags' for WAV, FLAC...)."""
    stream = container.streams.audio[0]
    claims = [float(stream.duration * stream.time_base)] if stream.duration and stream.time_base else []
    if container.duration:
        claims.append(container.duration / av.time_base)
    try:
        tagged = mutagen.File(path)
    except (mutagen.MutagenError, OSError, ValueError):
        tagged = None
    if tagged is not None and getattr(tagged.info, "length", 0):
        claims.append(float(tagged.info.length))
    return max(claims, default=0.0)


def _torn_ogg_page(path: Path) -> Damage | None:
    """The Ogg page a cut short file ends in, as damage after the last complete page's audio."""
    position, rate = 0, 0
    with path.open("rb") as stream:
        while True:
            offset = stream.tell()
            try:
                page = OggPage(stream)
            except EOFError:
                return None
            except (mutagen.MutagenError, OSError, ValueError) as error:
                seconds = position / rate if rate else 0.0
                return Damage(seconds, offset, f"the file ends inside an Ogg page ({error}): a recording cut short")
            if page.first and page.packets:
                rate = _ogg_rate(page.packets[0]) or rate
            if page.position > 0:
                position = page.position


def _ogg_rate(header: bytes) -> int:
    """Sample rate of an Ogg stream's granule positions, from its first header packet."""
    if header.startswith(b"\x01vorbis"):
        return int.from_bytes(header[12:16], "little")
    if header.startswith(b"OpusHead"):
        return 48_000  # Opus granules always count 48 kHz samples
    return 0


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


def file_hash(path: Pathlike) -> str:
    """SHA-256 of the file's bytes, to tell whether a session's recording changed.

    Remembered per path, size and modification time: checking a recording and then
    creating its session hashes a long recording once.
    """
    stat = Path(path).stat()
    return _file_hash(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _file_hash(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        while block := stream.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def head_hash(path: Pathlike) -> str:
    """SHA-256 of the file's first MiB: what names a recording that is still growing."""
    with Path(path).open("rb") as stream:
        return hashlib.sha256(stream.read(_HASH_BLOCK)).hexdigest()


class SpanReader:
    """Decode chosen spans of a recording at its own sample rate and channels, streaming.

    Spans read in time order are decoded in one forward pass; a span before the last one
    read, or more than ``seek_gap`` seconds after it, seeks first. Only the audio between
    the last span's start and the next span's end is ever held, so exporting every
    segment of a four-hour recording never loads it whole.

    Parameters
    ----------
    path : path
        The recording.
    seek_gap : float
        Seconds of audio past which seeking is cheaper than decoding on.

    Usage
    -----
    >>> with SpanReader("game.flac") as reader:          # doctest: +SKIP
    ...     samples = reader.read(12.5, 14.0)            # (channels, n) float32
    """

    def __init__(self, path: Pathlike, *, seek_gap: float = 10.0) -> None:
        self.path = _existing(path)
        self.seek_gap = seek_gap
        self._container = _open(self.path)
        stream = self._container.streams.audio[0]
        self._stream = stream
        self.sample_rate: int = stream.rate or SAMPLE_RATE
        self.channels: int = stream.channels or 1
        self._layout = stream.layout.name if stream.layout is not None else "mono"
        self._frames: Iterator[np.ndarray] | None = None
        self._blocks: list[np.ndarray] = []
        self._first: int | None = None  # sample index of the first buffered sample
        self._buffered = 0

    def __enter__(self) -> SpanReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file."""
        self._container.close()

    def read(self, start: float, end: float) -> np.ndarray:
        """Samples of ``[start, end)`` seconds, shape (channels, n), float32 in [-1, 1].

        Raises
        ------
        ValueError
            ``end`` does not come after ``start``.
        AudioError
            The recording cannot be decoded there.
        """
        if end <= start:
            msg = f"span {start:.3f}-{end:.3f} s is empty: start must come before end"
            raise ValueError(msg)
        first, last = round(max(start, 0.0) * self.sample_rate), round(end * self.sample_rate)
        gap = round(self.seek_gap * self.sample_rate)
        if self._frames is None or self._first is None or first < self._first or first > self._held_end() + gap:
            self._seek(start)
        while self._frames is not None and (self._first is None or self._held_end() < last):
            block = next(self._frames, None)
            if block is None:
                self._frames = None
                break
            self._blocks.append(block)
            self._buffered += block.shape[1]
        if self._first is None:
            return np.zeros((self.channels, 0), dtype=np.float32)
        held = np.concatenate(self._blocks, axis=1) if len(self._blocks) > 1 else self._blocks[0]
        offset = max(first - self._first, 0)
        self._blocks, self._buffered, self._first = [held[:, offset:]], held.shape[1] - offset, self._first + offset
        return np.ascontiguousarray(held[:, offset : offset + last - first])

    def _held_end(self) -> int:
        return (self._first or 0) + self._buffered

    def _seek(self, start: float) -> None:
        self._container.seek(int(max(0.0, start - 1.0) * av.time_base), any_frame=False)
        self._blocks, self._buffered, self._first = [], 0, None
        self._frames = self._decode()

    def _decode(self) -> Iterator[np.ndarray]:
        resampler = av.AudioResampler(format="fltp", layout=self._layout, rate=self.sample_rate)
        try:
            for frame in self._container.decode(self._stream):
                if self._first is None:
                    time = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
                    self._first = round(time * self.sample_rate)
                frame.pts = None
                for out in resampler.resample(frame):
                    yield out.to_ndarray().astype(np.float32, copy=False)
            for out in resampler.resample(None):
                yield out.to_ndarray().astype(np.float32, copy=False)
        except av.FFmpegError as error:
            msg = f"decoding {self.path} failed: {error}"
            raise AudioError(msg) from error
