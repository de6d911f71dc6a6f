"""VAD-aware chunking: cut the stream of audio in silences, chunk by chunk.

Each :class:`Chunk` owns the time span ``[start, end)``; its ``audio`` also holds
``overlap`` seconds of context on each side, so a word that crosses a cut is
heard whole by both neighbours. Stages keep only the words whose midpoint lies
in the owned span (see :func:`owns`), so no word is lost or doubled at a cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from livereview.core.options import ChunkOptions
from livereview.stages.audio import SAMPLE_RATE


@dataclass(frozen=True)
class Chunk:
    """A span of the recording and its audio with context on both sides.

    ``audio`` starts at ``audio_start`` seconds; ``speech`` lists the (start, end)
    seconds where VAD heard speech inside ``[start, end)``.
    """

    chunk_id: int
    start: float
    end: float
    audio_start: float
    audio: np.ndarray = field(repr=False)
    speech: tuple[tuple[float, float], ...] = ()
    final: bool = False

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def audio_end(self) -> float:
        return self.audio_start + self.audio.size / SAMPLE_RATE

    def owns(self, start: float, end: float) -> bool:
        """Whether something spanning ``[start, end)`` belongs to this chunk (midpoint rule)."""
        return owns(self.start, self.end, start, end, last=self.final)

    def to_record(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "audio_start": round(self.audio_start, 3),
            "audio_end": round(self.audio_end, 3),
            "speech": [[round(a, 3), round(b, 3)] for a, b in self.speech],
            "final": self.final,
        }


def owns(chunk_start: float, chunk_end: float, start: float, end: float, *, last: bool = False) -> bool:
    """Midpoint rule: ``[start, end)`` belongs to the chunk holding its midpoint."""
    middle = (start + end) / 2
    return chunk_start <= middle and (middle < chunk_end or last)


def _speech_regions(audio: np.ndarray, min_silence: float) -> list[tuple[int, int]]:
    """Speech regions (sample indices) by faster-whisper's Silero VAD."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(min_silence_duration_ms=int(min_silence * 1000), speech_pad_ms=50, min_speech_duration_ms=100)
    return [(r["start"], r["end"]) for r in get_speech_timestamps(audio, options)]


def _best_cut(regions: list[tuple[int, int]], low: int, target: int, high: int) -> int | None:
    """Sample index of the middle of the silence nearest ``target`` within [low, high]."""
    if not regions:
        return target
    gaps = [(regions[i][1], regions[i + 1][0]) for i in range(len(regions) - 1)]
    gaps.insert(0, (0, regions[0][0]))
    candidates = [(a + b) // 2 for a, b in gaps if b > a and low <= (a + b) // 2 <= high]
    if regions and regions[-1][1] <= high:
        # trailing silence after the last speech region
        candidates.append(min(max((regions[-1][1] + high) // 2, low), high))
    return min(candidates, key=lambda cut: abs(cut - target), default=None)


def chunk_audio(
    blocks: Iterable[np.ndarray],
    options: ChunkOptions | None = None,
    *,
    first_chunk_id: int = 0,
    start: float = 0.0,
) -> Iterator[Chunk]:
    """Cut a stream of 16 kHz mono blocks into chunks at silences.

    Parameters
    ----------
    blocks : iterable of (num_samples,) np.ndarray
        Consecutive audio, e.g. from :func:`livereview.stages.audio.iter_audio`.
    options : ChunkOptions, optional
        Lengths and overlap.
    first_chunk_id : int
        Id of the first chunk.
    start : float
        Where the first chunk begins, in seconds: the end of the last chunk of an
        interrupted run. The cuts that follow are the ones an uninterrupted run makes.

    Yields
    ------
    chunk : Chunk
        Consecutive chunks covering the whole stream, ids counting up.
    """
    options = options or ChunkOptions()
    rate = SAMPLE_RATE
    overlap = int(options.overlap * rate)
    buffer = np.zeros(0, dtype=np.float32)
    chunk_start = round(start * rate)  # sample index where the next chunk's owned span begins
    buffer_start = 0  # sample index of buffer[0] in the recording
    chunk_id = first_chunk_id
    stream = iter(blocks)
    exhausted = False
    while True:
        # Fill until a chunk of max_length plus right context is available.
        while not exhausted and buffer_start + buffer.size < chunk_start + int(options.max_length * rate) + overlap:
            block = next(stream, None)
            if block is None:
                exhausted = True
            else:
                buffer = np.concatenate([buffer, block.astype(np.float32, copy=False)])
                skip = max(min(chunk_start - overlap - buffer_start, buffer.size), 0)
                buffer, buffer_start = buffer[skip:], buffer_start + skip
        available_end = buffer_start + buffer.size
        if available_end <= chunk_start:
            return
        offset = chunk_start - buffer_start
        # Exactly the span a cut can use: the chunks do not depend on how the audio arrived.
        window = buffer[offset : offset + int(options.max_length * rate) + overlap]
        regions = _speech_regions(window, options.min_silence)
        remaining = available_end - chunk_start
        if exhausted and remaining <= int(options.max_length * rate):
            cut, final = remaining, True
        else:
            low, target = int(options.min_length * rate), int(options.length * rate)
            high = min(int(options.max_length * rate), remaining - overlap)
            cut = _best_cut(regions, low, target, high)
            cut, final = (high if cut is None else cut), False
        audio_from = max(offset - overlap, 0)
        audio_to = min(offset + cut + overlap, buffer.size)
        speech = tuple(
            ((chunk_start + max(a, 0)) / rate, (chunk_start + min(b, cut)) / rate) for a, b in regions if a < cut
        )
        yield Chunk(
            chunk_id=chunk_id,
            start=chunk_start / rate,
            end=(chunk_start + cut) / rate,
            audio_start=(buffer_start + audio_from) / rate,
            audio=buffer[audio_from:audio_to].copy(),
            speech=speech,
            final=final,
        )
        if final:
            return
        chunk_id += 1
        chunk_start += cut
        keep_from = max(chunk_start - overlap - buffer_start, 0)
        buffer = buffer[keep_from:]
        buffer_start += keep_from
