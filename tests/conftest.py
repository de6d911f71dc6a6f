"""Shared fixtures: real recordings and real pipeline runs (models load once per process)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

from live_helpers import make_session

import livereview
from livereview.demo import demo_audio_path, demo_party_path, pyannote_sample_paths


@pytest.fixture(scope="session")
def sample() -> dict[str, Path]:
    """pyannote's 30 s two-speaker recording with its reference RTTM and STM."""
    return pyannote_sample_paths()


@pytest.fixture
def session(tmp_path: Path, sample: dict[str, Path]) -> livereview.Session:
    """A complete session of six made-up segments on the sample recording (no models needed).

    Modules that need another kind of session (tests/test_widgets.py) define their own.
    """
    session = make_session(sample["audio"], tmp_path)
    yield session
    session.close()


@pytest.fixture(scope="session")
def sample_session(tmp_path_factory: pytest.TempPathFactory, sample: dict[str, Path]) -> livereview.Session:
    """The whole pipeline run once on the sample, two speakers, with a recorder attached."""
    out = tmp_path_factory.mktemp("sample-run")
    session = livereview.Session.create(
        sample["audio"],
        out_dir=out,
        options=livereview.RunOptions(diarize=livereview.DiarizeOptions(num_speakers=2)),
    )
    recorder = livereview.RecordingSubscriber()
    session.events.subscribe(recorder, name="recorder")
    session.run(progress=False)
    session.events.close()
    session.recorder = recorder
    return session


@pytest.fixture(scope="session")
def demo_session(tmp_path_factory: pytest.TempPathFactory) -> livereview.Session:
    """The whole pipeline run once on the bundled demo recording (four speakers, party file)."""
    out = tmp_path_factory.mktemp("demo-run")
    session = livereview.run(
        demo_audio_path(), out_dir=out, num_speakers=4, party=demo_party_path(), language="en", progress=False
    )
    session.events.close()
    return session
