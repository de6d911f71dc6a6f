"""A run killed midway resumes from its last completed chunk to the same result."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

import livereview

pytestmark = pytest.mark.slow

RUN_OPTIONS = {"num_speakers": 2, "chunk_length": 10.0, "language": "en", "progress": False}
COMPARED = ["segment_id", "chunk_id", "start", "end", "text", "speaker_id", "ic_ooc", "character_tag", "status"]


def _run_in_a_fresh_process(audio, out_dir) -> livereview.Session:
    """``livereview.run`` in a process of its own, as the killed run is, so both start from the same state."""
    script = f"import livereview; livereview.run({str(audio)!r}, out_dir={str(out_dir)!r}, **{RUN_OPTIONS!r})"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return livereview.open_session(out_dir / "sample")


def test_killed_run_resumes_to_the_same_result(tmp_path, sample) -> None:
    # Every run here starts in a fresh process: made whole in the test process after the rest of the suite,
    # the run gave 11 segments where the resumed one (its first chunks from a fresh process) gave 13.
    reference = _run_in_a_fresh_process(sample["audio"], tmp_path / "whole")
    assert len(reference.completed_chunks) >= 3

    killed_dir = tmp_path / "killed"
    child = textwrap.dedent(
        f"""
        import os, signal, livereview
        session = livereview.Session.create(
            {str(sample["audio"])!r}, out_dir={str(killed_dir)!r},
            options=livereview.RunOptions(
                chunk=livereview.ChunkOptions.from_value(10.0),
                transcribe=livereview.TranscribeOptions(language="en"),
                diarize=livereview.DiarizeOptions(num_speakers=2),
            ),
        )
        def kill_after_second_chunk(event):
            if event.kind == "chunk_completed" and event.chunk_id == 1:
                os.kill(os.getpid(), signal.SIGKILL)
        session.events.subscribe(kill_after_second_chunk)
        session.run(progress=False)
        """
    )
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=600)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    session_dir = killed_dir / "sample"
    assert json.loads((session_dir / "metadata.json").read_text())["status"] == "running"
    interrupted = livereview.open_session(session_dir)
    assert 2 <= len(interrupted.completed_chunks) < len(reference.completed_chunks)

    resumed = _run_in_a_fresh_process(sample["audio"], killed_dir)
    assert resumed.status == "complete"
    pd.testing.assert_frame_equal(resumed.segments[COMPARED], reference.segments[COMPARED])
    assert resumed.diarization().round(3).equals(reference.diarization().round(3))
    # the resumed run's events continue the sequence of the killed one
    seqs = [event.seq for event in resumed.event_log()]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    resumed.close()
    reference.close()


def test_a_session_from_before_an_option_existed_resumes_with_its_default(tmp_path, sample) -> None:
    first = livereview.Session.create(sample["audio"], out_dir=tmp_path, session_id="game")
    first.close()
    metadata_path = first.directory / "metadata.json"
    metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    del metadata["config"]["diarize"]["recluster_after"]  # as a session written before the option
    metadata_path.write_text(json.dumps(metadata), encoding="utf-8")
    again = livereview.Session.create(sample["audio"], out_dir=tmp_path, session_id="game")
    assert again.directory == first.directory
    again.close()


def test_a_session_directory_of_another_recording_is_refused(tmp_path, sample) -> None:
    first = livereview.Session.create(sample["audio"], out_dir=tmp_path, session_id="game")
    first.close()
    other = tmp_path / "other.wav"
    other.write_bytes(sample["audio"].read_bytes()[:-32000])
    with pytest.raises(FileExistsError, match="holds results for another recording"):
        livereview.Session.create(other, out_dir=tmp_path, session_id="game")
    with pytest.raises(FileExistsError, match="other options \\(diarize differ\\)"):
        livereview.Session.create(
            sample["audio"],
            out_dir=tmp_path,
            session_id="game",
            options=livereview.RunOptions(diarize=livereview.DiarizeOptions(num_speakers=3)),
        )
