"""Chunking: cuts in silences, full coverage, and no word lost or doubled at a cut."""

from __future__ import annotations

import itertools
import re

import jiwer
import numpy as np
import pytest

from livereview.core.options import ChunkOptions
from livereview.demo import demo_audio_path
from livereview.stages.audio import SAMPLE_RATE, iter_audio, probe
from livereview.stages.chunks import chunk_audio
from livereview.stages.transcribe import Transcriber

pytestmark = pytest.mark.slow


def _normalized(words) -> list[str]:
    return [re.sub(r"[^a-z']", "", w.word.lower()) for w in words]


def test_chunks_cover_the_recording_without_gaps_and_cut_in_silence() -> None:
    path = demo_audio_path()
    options = ChunkOptions()
    chunks = list(chunk_audio(iter_audio(path), options))
    assert chunks[0].start == 0.0
    assert abs(chunks[-1].end - probe(path).duration) < 0.05
    assert chunks[-1].final and not any(c.final for c in chunks[:-1])
    for before, after in itertools.pairwise(chunks):
        assert before.end == after.start
        assert after.chunk_id == before.chunk_id + 1
        assert options.min_length - 1e-6 <= before.duration <= options.max_length + 1e-6
        # the cut lies outside every stretch of speech VAD found around it
        assert all(not (start < before.end < end) for start, end in before.speech + after.speech)
        # context on both sides of the owned span
        assert before.audio_start <= before.start - options.overlap + 1e-6 or before.chunk_id == 0
        assert before.audio_end >= before.end + options.overlap - 1e-6


def test_resumed_chunking_reproduces_the_same_cuts() -> None:
    path = demo_audio_path()
    chunks = list(chunk_audio(iter_audio(path), ChunkOptions()))
    resumed = list(chunk_audio(iter_audio(path), ChunkOptions(), first_chunk_id=2, start=chunks[2].start))
    assert [(c.chunk_id, c.start, c.end) for c in resumed] == [(c.chunk_id, c.start, c.end) for c in chunks[2:]]
    np.testing.assert_array_equal(resumed[0].audio, chunks[2].audio)


def test_no_word_lost_or_doubled_at_cuts_inside_speech(sample) -> None:
    """Short chunks force cuts in the middle of continuous dialogue."""
    transcriber = Transcriber({"language": "en"})

    def transcribe(options: ChunkOptions):
        chunks = list(chunk_audio(iter_audio(sample["audio"]), options))
        words = [w for c in chunks for s in transcriber.transcribe(c, "sample") for w in s.words]
        return chunks, words

    _, whole = transcribe(ChunkOptions(length=30, min_length=15, max_length=40))
    chunks, pieces = transcribe(ChunkOptions(length=6, min_length=4, max_length=7, overlap=1.5))
    cuts = [c.end for c in chunks[:-1]]
    assert len(cuts) >= 3
    # every word straddling a cut in the single-pass transcript is there exactly once
    straddling = [(w, t) for t in cuts for w in whole if w.start < t < w.end]
    assert straddling, "expected some words across the cuts"
    for word, cut in straddling:
        near = [p for p in pieces if abs((p.start + p.end) / 2 - (word.start + word.end) / 2) < 0.5]
        assert _normalized(near).count(_normalized([word])[0]) == 1, (word, cut, near)
    # words come in time order (Whisper's own timings may jitter by a few frames), none repeated across a cut
    middles = [(w.start + w.end) / 2 for w in pieces]
    assert all(later >= earlier - 0.1 for earlier, later in itertools.pairwise(middles))
    for cut in cuts:
        around = [p for p in pieces if abs(p.start - cut) < 1.5]
        pairs = zip(_normalized(around), _normalized(around[1:]), strict=False)
        assert not any(a == b and a != "hello" for a, b in pairs)  # "hello hello hello" is really said
    # and the two transcripts agree
    assert jiwer.wer(" ".join(_normalized(whole)), " ".join(_normalized(pieces))) <= 0.12


def test_chunk_options_are_validated() -> None:
    with pytest.raises(ValueError, match="0 < min_length <= length <= max_length"):
        ChunkOptions(length=5, min_length=10, max_length=20)
    with pytest.raises(ValueError, match="overlap must be between 0 and half of min_length"):
        ChunkOptions(overlap=6)


def test_silent_audio_yields_chunks_without_speech() -> None:
    silence = [np.zeros(10 * SAMPLE_RATE, dtype=np.float32) for _ in range(5)]
    chunks = list(chunk_audio(silence, ChunkOptions()))
    assert sum(c.duration for c in chunks) == pytest.approx(50.0)
    assert all(c.speech == () for c in chunks)
