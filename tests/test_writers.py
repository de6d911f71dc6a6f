"""One writer per session directory, with readers alongside; one series of event numbers."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from live_helpers import make_session

import livereview
from livereview.demo import pyannote_sample_paths
from livereview.store.rerun_log import RerunBusyError
from livereview.store.writer import SessionBusyError, WriterLock

SAMPLE = pyannote_sample_paths()["audio"]

_HOLD = """
import sys, time
from livereview.store.writer import WriterLock
lock = WriterLock(sys.argv[1])
lock.acquire("run")
print("holding", flush=True)
time.sleep(600)
"""


@pytest.fixture
def session(tmp_path: Path) -> livereview.Session:
    session = make_session(SAMPLE, tmp_path)
    yield session
    session.close()


def test_a_second_writer_in_this_process_is_refused_and_readers_work(session: livereview.Session) -> None:
    other = livereview.open_session(session.directory)
    try:
        with WriterLock(session.directory).hold("run"):
            with pytest.raises(RerunBusyError, match=rf"being written by run \(pid {os.getpid()} on "):
                other.reclassify(chunks=[0], user="ana", classifier="keywords", progress=False)
            holder = WriterLock(session.directory).holder()
            assert holder["what"] == "run" and holder["pid"] == os.getpid()
            # readers keep working: the merged view, exports, corrections
            assert len(other.view()) == 6
            assert other.export_text("txt").count("\n") == 6
            other.set_override("c00000-s001", user="ana", text="still editable")
        assert WriterLock(session.directory).holder() is None
        other.reclassify(chunks=[0], user="ana", classifier="keywords", progress=False)  # free again
    finally:
        other.close()


def test_a_writer_in_another_process_is_named_and_a_killed_one_is_detected(
    session: livereview.Session, caplog: pytest.LogCaptureFixture
) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(session.directory)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(SessionBusyError, match=rf"being written by run \(pid {holder.pid} on .*, since "):
            WriterLock(session.directory).acquire("run")
        with pytest.raises(RerunBusyError, match=f"pid {holder.pid}"):
            session.reclassify(chunks=[0], user="ana", classifier="keywords", progress=False)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The system released the killed writer's lock; its note is stale and said so.
    assert json.loads((session.directory / "writer.json").read_text())["pid"] == holder.pid
    with caplog.at_level(logging.WARNING, logger="livereview.store.writer"):
        rerun = session.reclassify(chunks=[0], user="ana", classifier="keywords", progress=False)
    assert rerun.rerun_id == "r0001"
    assert f"pid {holder.pid}" in caplog.text and "left by a process that ended" in caplog.text
    assert not (session.directory / "writer.json").exists()


def test_a_run_refused_while_another_writes_names_the_holder(tmp_path: Path) -> None:
    fresh = livereview.Session.create(SAMPLE, out_dir=tmp_path)  # never run: a run would have work to do
    try:
        with WriterLock(fresh.directory).hold("rerun"), pytest.raises(SessionBusyError, match="being written by rerun"):
            fresh.run(progress=False)
        assert fresh.status == "created" and not fresh.paths.segments.exists()
    finally:
        fresh.close()


def test_two_sessions_on_one_directory_number_their_events_in_one_series(session: livereview.Session) -> None:
    other = livereview.open_session(session.directory)
    try:
        for index in range(5):
            session.set_override(f"c00000-s00{index}", user="ana", text=f"first {index}")
            other.set_override(f"c00000-s00{index}", user="bob", text=f"second {index}")
        session.events.close()
        other.events.close()
    finally:
        other.close()
    events = session.event_log()
    seqs = [event.seq for event in events]
    assert len(seqs) >= 10 and len(set(seqs)) == len(seqs)  # each session announces; no number twice
    told = {(s.segment_id, s.text) for event in events for s in event.segments}
    assert {(f"c00000-s00{i}", f"second {i}") for i in range(5)} <= told
    reopened = livereview.open_session(session.directory)
    try:
        assert reopened.events.seq == max(seqs)  # where the series goes on, without reading the log
    finally:
        reopened.close()


def test_the_writer_lock_is_released_after_a_run(tmp_path: Path) -> None:
    fresh = livereview.Session.create(SAMPLE, out_dir=tmp_path)
    try:
        lock = WriterLock(fresh.directory)
        assert lock.holder() is None
        with lock.hold("run"):
            note = json.loads((fresh.directory / "writer.json").read_text())
            assert (note["what"], note["pid"]) == ("run", os.getpid()) and note["since"].endswith("+00:00")
        assert lock.holder() is None and not (fresh.directory / "writer.json").exists()
    finally:
        fresh.close()
