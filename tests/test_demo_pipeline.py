"""The whole pipeline on the bundled demo recording: four speakers, a party, IC/OOC labels."""

from __future__ import annotations

import re

import jiwer
import pytest
from pyannote.core import Annotation
from pyannote.core import Segment as Span
from pyannote.database.util import load_rttm
from pyannote.metrics.diarization import DiarizationErrorRate

from livereview.demo import demo_reference, demo_rttm_path

pytestmark = pytest.mark.slow


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())


def test_four_speakers_found_with_low_diarization_error(demo_session) -> None:
    reference = next(iter(load_rttm(demo_rttm_path()).values()))
    hypothesis = Annotation()
    for turn in demo_session.diarization().itertuples():
        hypothesis[Span(turn.start, turn.end)] = turn.speaker_id
    assert len(hypothesis.labels()) == 4
    der = DiarizationErrorRate(collar=0.0, skip_overlap=False)(reference, hypothesis)
    assert der <= 0.12, f"DER {der:.3f}"  # measured 0.068


def test_transcript_is_close_to_the_script(demo_session) -> None:
    reference = " ".join(_words(text) for text in demo_reference()["text"])
    hypothesis = " ".join(_words(text) for text in demo_session.segments["text"])
    wer = jiwer.wer(reference, hypothesis)
    assert wer <= 0.20, f"WER {wer:.3f}"  # digits written as numbers count as errors here


def test_every_scripted_turn_is_transcribed(demo_session) -> None:
    """No turn is lost, also where a chunk starts in the middle of speech."""
    segments = demo_session.segments
    for turn in demo_reference().itertuples():
        middle = (turn.start + turn.end) / 2
        covering = segments[(segments["start"] <= turn.end) & (segments["end"] >= turn.start)]
        assert len(covering), f"no segment covers the turn at {turn.start:.1f}-{turn.end:.1f} s ({turn.text!r})"
        assert (covering["start"] - 1.0 <= middle).any()
