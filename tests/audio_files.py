"""Recordings for the tests, written with PyAV: excerpts of the demo in several formats, cut or growing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av
import numpy as np

from livereview.demo import demo_audio_path
from livereview.stages.audio import SAMPLE_RATE, iter_audio

#: File suffix -> (container format, codec, sample rate the codec takes).
FORMATS = {
    ".wav": ("wav", "pcm_s16le", SAMPLE_RATE),
    ".flac": ("flac", "flac", SAMPLE_RATE),
    ".ogg": ("ogg", "libopus", 48_000),
    ".webm": ("webm", "libopus", 48_000),
}


def demo_excerpt(seconds: float, start: float = 0.0) -> np.ndarray:
    """``seconds`` of the demo recording from ``start``, 16 kHz mono."""
    audio = np.concatenate(list(iter_audio(demo_audio_path())))
    return audio[round(start * SAMPLE_RATE) : round((start + seconds) * SAMPLE_RATE)]


def write_audio(path: Path, samples: np.ndarray) -> Path:
    """Encode 16 kHz mono ``samples`` into ``path`` (format from its suffix, see :data:`FORMATS`)."""
    container_format, codec, rate = FORMATS[path.suffix]
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=rate)
        pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype(np.int16)
        for start in range(0, pcm.size, SAMPLE_RATE):
            frame = av.AudioFrame.from_ndarray(pcm[None, start : start + SAMPLE_RATE], format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            for resampled in resampler.resample(frame):
                for packet in stream.encode(resampled):
                    out.mux(packet)
        for resampled in resampler.resample(None):
            for packet in stream.encode(resampled):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def cut(path: Path, target: Path, fraction: float) -> Path:
    """A copy of ``path`` holding only its first ``fraction`` of bytes (a recording cut short)."""
    data = path.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


class GrowingWriter(threading.Thread):
    """Writes a finished file into ``target`` a block at a time, at ``speed`` times real time, as a recorder would.

    A WAV file starts with placeholder sizes in its header and gets its real sizes once
    the writer is done. ``pauses`` maps a block index to extra seconds the writer waits
    after it. ``written_at`` records (bytes written so far, time) after each block.
    """

    def __init__(
        self,
        source: Path,
        target: Path,
        *,
        duration: float,
        speed: float = 1.0,
        block_bytes: int = 32_000,
        pauses: dict[int, float] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.data = source.read_bytes()
        self.target = target
        self.seconds_per_byte = duration / len(self.data) / speed
        self.block_bytes = block_bytes
        self.pauses = pauses or {}
        self.written_at: list[tuple[int, float]] = []

    def run(self) -> None:
        data = bytearray(self.data)
        sizes = (4, data.find(b"data") + 4) if self.target.suffix == ".wav" else ()
        finished_header = bytes(data[: sizes[1] + 4]) if sizes else b""
        for offset in sizes:
            data[offset : offset + 4] = b"\xff\xff\xff\xff"
        with self.target.open("wb") as out:
            for index, start in enumerate(range(0, len(data), self.block_bytes)):
                out.write(data[start : start + self.block_bytes])
                out.flush()
                self.written_at.append((min(start + self.block_bytes, len(data)), time.time()))
                time.sleep(self.block_bytes * self.seconds_per_byte + self.pauses.get(index, 0.0))
            if finished_header:
                out.seek(0)
                out.write(finished_header)
