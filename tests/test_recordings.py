"""Recordings as they really arrive: cut short, damaged, or still being written."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from audio_files import GrowingWriter, cut, demo_excerpt, write_audio

import livereview
from livereview.demo import demo_audio_path, pyannote_sample_paths
from livereview.stages.audio import SAMPLE_RATE, Damage, follow_audio, iter_audio

SECONDS = 30.0


@pytest.fixture(scope="module")
def excerpt() -> np.ndarray:
    return demo_excerpt(SECONDS)


@pytest.mark.parametrize("path", [demo_audio_path(), pyannote_sample_paths()["audio"]], ids=["demo", "sample"])
def test_intact_recordings_report_no_damage(path: Path) -> None:
    found: list[Damage] = []
    decoded = sum(block.size for block in iter_audio(path, on_damage=found.append))
    assert found == [] and decoded > 0


@pytest.mark.parametrize(
    ("suffix", "what"),
    [
        (".flac", "a frame does not decode"),  # cut in the middle of a frame
        (".wav", "header claims"),  # cut in the data: the header claims more than the file holds
        (".ogg", "inside an Ogg page"),  # cut in the middle of a page
        (".webm", "header claims"),
    ],
)
def test_a_cut_recording_decodes_up_to_the_cut_and_says_where(
    tmp_path: Path, excerpt: np.ndarray, suffix: str, what: str
) -> None:
    whole = write_audio(tmp_path / f"whole{suffix}", excerpt)
    reference = np.concatenate(list(iter_audio(whole)))
    damaged = cut(whole, tmp_path / f"cut{suffix}", 0.7)
    found: list[Damage] = []
    decoded = np.concatenate(list(iter_audio(damaged, on_damage=found.append)))
    assert found and what in found[0].message
    kept = found[0].time
    assert 0.55 * SECONDS < kept < 0.8 * SECONDS  # where the data ends, in recording time
    assert found[0].byte_offset is not None and found[0].byte_offset <= damaged.stat().st_size
    assert f"at 0:{kept:04.1f}" in found[0].describe()
    # what was decoded is the recording as far as it goes (lossy codecs: close, not equal)
    intact = int(kept * SAMPLE_RATE) - SAMPLE_RATE // 10
    assert np.corrcoef(decoded[:intact], reference[:intact])[0, 1] > 0.99


def test_without_a_damage_callback_a_cut_recording_is_an_error(tmp_path: Path, excerpt: np.ndarray) -> None:
    damaged = cut(write_audio(tmp_path / "whole.flac", excerpt), tmp_path / "cut.flac", 0.5)
    with pytest.raises(livereview.stages.audio.AudioError, match=r"decoding .*cut.flac failed at 0:"):
        list(iter_audio(damaged))


@pytest.mark.slow
def test_a_cut_recording_makes_a_partial_session_that_reports_its_damage(tmp_path: Path, excerpt: np.ndarray) -> None:
    damaged = cut(write_audio(tmp_path / "whole.flac", excerpt), tmp_path / "table.flac", 0.6)
    result = subprocess.run(
        [sys.executable, "-m", "livereview", "run", str(damaged), "--out", str(tmp_path / "out"), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "warning: the recording is damaged at" in result.stderr
    session = livereview.open_session(tmp_path / "out" / "table")
    try:
        assert session.status == "partial"
        damage, last = session.metadata["damage"][0], session.metadata["damage"][-1]
        assert 0.45 * SECONDS < damage["time"] < 0.65 * SECONDS
        # every decodable chunk: up to the end of what the file holds (a torn frame stands as silence)
        assert damage["time"] <= session.chunks["end"].iloc[-1] <= last["time"] + 0.05
        assert len(session.segments) and session.segments["end"].max() <= damage["time"] + 0.5
        (condition,) = [c for c in session.health() if c["key"] == "recording"]
        assert f"damaged at {damage['time']:.1f} s" in condition["message"] and "partial" in condition["message"]
        told = [e for e in session.event_log() if e.stage == "audio" and e.status == "damaged"]
        assert told and told[0].data["damage"] == damage
        summary = [e for e in session.event_log() if e.kind == "summary" and e.stage == "run"][-1]
        assert summary.status == "partial"
        before = session.segments
    finally:
        session.close()
    # Running it again finds nothing left to do: the results stay as they are.
    again = livereview.run(damaged, out_dir=tmp_path / "out", progress=False)
    try:
        assert again.status == "partial"
        pd.testing.assert_frame_equal(again.segments, before)
    finally:
        again.close()


def test_a_wav_cut_inside_its_header_is_refused_before_any_work(tmp_path: Path, excerpt: np.ndarray) -> None:
    broken = cut(write_audio(tmp_path / "whole.wav", excerpt), tmp_path / "header.wav", 30 / (SECONDS * 32_000))
    result = subprocess.run(
        [sys.executable, "-m", "livereview", "run", str(broken), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "cannot decode" in result.stderr and str(broken) in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".webm"])
def test_following_a_growing_file_gives_the_samples_of_the_finished_one(
    tmp_path: Path, excerpt: np.ndarray, suffix: str
) -> None:
    finished = write_audio(tmp_path / f"finished{suffix}", excerpt[: 12 * SAMPLE_RATE])
    growing = tmp_path / f"growing{suffix}"
    writer = GrowingWriter(finished, growing, duration=12.0, speed=6.0, pauses={3: 1.0})
    writer.start()
    while not growing.exists() or growing.stat().st_size < 4096:
        time.sleep(0.01)
    followed = np.concatenate(list(follow_audio(growing, idle_timeout=2.0, poll=0.05)))
    writer.join()
    np.testing.assert_array_equal(followed, np.concatenate(list(iter_audio(finished))))


@pytest.mark.slow
def test_a_run_following_a_growing_recording_matches_a_run_on_the_finished_file(
    tmp_path: Path, excerpt: np.ndarray
) -> None:
    finished = write_audio(tmp_path / "finished.wav", excerpt)
    growing = tmp_path / "table.wav"
    writer = GrowingWriter(finished, growing, duration=SECONDS, speed=1.5, pauses={10: 2.0, 20: 1.5})
    writer.start()
    while not growing.exists() or growing.stat().st_size < 4096:
        time.sleep(0.01)
    recorder = livereview.RecordingSubscriber()
    session = livereview.run(
        growing,
        out_dir=tmp_path / "followed",
        chunk_length=10,
        follow=True,
        idle_timeout=5.0,
        background=True,
        progress=False,
    )
    session.events.subscribe(recorder, name="recorder")
    first = recorder.wait_for(lambda e: e.kind == "segments", timeout=120)
    writer.join()
    assert first.timestamp < writer.written_at[-1][1]  # rows came while the recording was still growing
    session.wait(timeout=600)
    reference = livereview.run(
        finished, out_dir=tmp_path / "finished", session_id="table", chunk_length=10, progress=False
    )
    try:
        assert session.status == reference.status == "complete"
        assert session.metadata["audio"]["duration"] == pytest.approx(SECONDS, abs=0.01)
        assert session.metadata["audio"]["sha256"] == reference.metadata["audio"]["sha256"]
        columns = ["segment_id", "start", "end", "text", "speaker_id", "ic_ooc", "character_tag"]
        pd.testing.assert_frame_equal(session.segments[columns], reference.segments[columns])
        spans = ["chunk_id", "start", "end"]
        pd.testing.assert_frame_equal(session.chunks[spans], reference.chunks[spans])
    finally:
        session.close()
        reference.close()


@pytest.mark.slow
def test_stop_ends_a_followed_recording_and_the_run_completes(tmp_path: Path, excerpt: np.ndarray) -> None:
    finished = write_audio(tmp_path / "finished.wav", excerpt)
    growing = tmp_path / "table.wav"
    writer = GrowingWriter(finished, growing, duration=SECONDS, speed=1.0)
    writer.start()
    while not growing.exists() or growing.stat().st_size < 4096:
        time.sleep(0.01)
    session = livereview.run(
        growing, out_dir=tmp_path / "out", chunk_length=8, follow=True, background=True, progress=False
    )
    recorder = livereview.RecordingSubscriber()
    session.events.subscribe(recorder, name="recorder")
    recorder.wait_for(lambda e: e.kind == "chunk_completed", timeout=120)
    session.stop()
    session.wait(timeout=300)
    try:
        assert session.status == "complete"
        assert 8 < session.chunks["end"].iloc[-1] < SECONDS - 5  # stopped before the recording ended
        assert any(e.kind == "stage_completed" and e.stage == "global" for e in recorder.events)
    finally:
        session.close()
        writer.join()
