"""Playback of one segment: its audio clip as WAV bytes and a mini waveform of its chunk.

Only the clip travels to the browser, never the recording: the chunk around the
segment is decoded with :func:`livereview.stages.audio.load_clip`, the segment's samples
are encoded as 16-bit WAV, and the chunk is reduced to a few hundred peak values
for the waveform. In the browser a click on the waveform seeks the clip, and an
editor drags the segment's edges on it to move its start or end (a ``boundary``
message back to the kernel).

Usage
-----
>>> import numpy as np
>>> samples = np.zeros(16_000, dtype=np.float32)
>>> len(wav_bytes(samples)) - 44   # one second of 16-bit mono: 32,000 bytes after the header
32000
>>> waveform_peaks(samples, bins=100).shape
(100,)
"""

from __future__ import annotations

import io
import os
import wave
from dataclasses import dataclass
from typing import Any

import anywidget
import numpy as np
import traitlets as t

from livereview.core.palette import css_variables
from livereview.stages.audio import SAMPLE_RATE, load_clip
from livereview.ui.assets import asset_path

#: Longest clip sent to the browser, in seconds (a longer segment plays its first part).
MAX_CLIP_SECONDS = 30.0
#: Widest span the mini waveform covers, in seconds (a longer chunk is cut around the segment).
MAX_WAVEFORM_SECONDS = 60.0
#: Peak values in the mini waveform.
WAVEFORM_BINS = 480


def wav_bytes(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Encode float samples in [-1, 1] as a mono 16-bit PCM WAV file.

    Parameters
    ----------
    samples : (num_samples,) np.ndarray
        Mono audio; values outside [-1, 1] are clipped.
    sample_rate : int
        Samples per second.

    Returns
    -------
    bytes
        A complete WAV file: a 44-byte header and 2 bytes per sample.
    """
    pcm = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32767.0), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm.tobytes())
    return buffer.getvalue()


def waveform_peaks(samples: np.ndarray, bins: int = WAVEFORM_BINS) -> np.ndarray:
    """Peak amplitude per bin, scaled so the loudest bin is 255.

    Parameters
    ----------
    samples : (num_samples,) np.ndarray
        Mono audio.
    bins : int
        Number of values returned.

    Returns
    -------
    (bins,) np.ndarray of uint8
        Zeros for silence (or an empty input).
    """
    samples = np.abs(np.asarray(samples, dtype=np.float32))
    if samples.size == 0:
        return np.zeros(bins, dtype=np.uint8)
    edges = np.linspace(0, samples.size, bins + 1).astype(np.int64)
    edges[1:] = np.maximum(edges[1:], edges[:-1] + 1)  # at least one sample per bin
    edges = np.minimum(edges, samples.size)
    starts = np.minimum(edges[:-1], samples.size - 1)
    peaks = np.maximum.reduceat(samples, starts)
    top = float(peaks.max())
    if top <= 0:
        return np.zeros(bins, dtype=np.uint8)
    return np.round(peaks / top * 255.0).astype(np.uint8)


@dataclass(frozen=True)
class Clip:
    """One segment's audio and the waveform of the chunk around it.

    Attributes
    ----------
    segment_id : str
        The segment played.
    start, end : float
        The clip's span on the recording's timeline, in seconds.
    window_start, window_end : float
        The span the waveform covers (the segment's chunk), in seconds.
    wav : bytes
        The clip as a 16 kHz mono 16-bit WAV file.
    peaks : (WAVEFORM_BINS,) np.ndarray of uint8
        The waveform of the window.
    """

    segment_id: str
    start: float
    end: float
    window_start: float
    window_end: float
    wav: bytes
    peaks: np.ndarray

    def message(self, **extra: Any) -> tuple[dict[str, Any], list[bytes]]:
        """The custom message (content, buffers) that carries the clip to the browser."""
        content = {
            "kind": "clip",
            "id": self.segment_id,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "window_start": round(self.window_start, 3),
            "window_end": round(self.window_end, 3),
            "sample_rate": SAMPLE_RATE,
            **extra,
        }
        return content, [self.wav, self.peaks.tobytes()]


def load_segment_clip(
    audio_path: os.PathLike[str] | str,
    segment_id: str,
    start: float,
    end: float,
    window: tuple[float, float] | None = None,
    *,
    duration: float | None = None,
) -> Clip:
    """Decode the window around a segment once and cut the segment's clip from it.

    Parameters
    ----------
    audio_path : path
        The recording.
    segment_id : str
        Carried into the :class:`Clip`.
    start, end : float
        The segment's span, in seconds.
    window : (float, float), optional
        The span the waveform shows (the segment's chunk); the segment alone by default.
        Cut to :data:`MAX_WAVEFORM_SECONDS` around the segment.
    duration : float, optional
        The recording's length, to keep spans inside it.

    Raises
    ------
    ValueError
        The segment span is empty.
    """
    if duration is not None:
        end = min(end, duration)
    if end <= start:
        msg = f"segment {segment_id!r} spans {start:.3f}-{end:.3f} s: nothing to play"
        raise ValueError(msg)
    clip_end = min(end, start + MAX_CLIP_SECONDS)
    low, high = window if window is not None else (start, clip_end)
    low, high = min(low, start), max(high, clip_end)
    if high - low > MAX_WAVEFORM_SECONDS:
        margin = max(0.0, (MAX_WAVEFORM_SECONDS - (clip_end - start)) / 2)
        low, high = max(low, start - margin), min(high, clip_end + margin)
    low = max(low, 0.0)
    if duration is not None:
        high = min(high, duration)
    samples = load_clip(audio_path, low, high)
    first = round((start - low) * SAMPLE_RATE)
    clip = samples[first : first + round((clip_end - start) * SAMPLE_RATE)]
    return Clip(segment_id, start, clip_end, low, high, wav_bytes(clip), waveform_peaks(samples))


class Playback(anywidget.AnyWidget):
    """Plays the selected segment and draws the waveform of its chunk.

    The review widget sends it :class:`Clip` messages; a view that renders asks for
    the last clip again (messages sent before a view exists are lost).
    """

    _esm = asset_path("playback.js")
    _css = asset_path("review.css")

    #: Shown above the waveform: speaker and time of the clip (plain text).
    label = t.Unicode("Select a segment to play it.").tag(sync=True)
    #: The last error while preparing a clip (shown as text).
    error = t.Unicode("").tag(sync=True)
    #: Whether the segment's edges can be dragged to correct its start and end.
    can_edit = t.Bool(False).tag(sync=True)
    #: The review's colours as CSS variables (``--lr-accent``...), from :mod:`livereview.core.palette`.
    palette = t.Dict(css_variables()).tag(sync=True)
