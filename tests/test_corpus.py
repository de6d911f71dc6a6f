"""Many sessions: batch runs on a real Dask cluster, failures kept apart, resumes, and the corpus view."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from audio_files import demo_excerpt, write_audio
from distributed import Client, LocalCluster
from live_helpers import make_session

import livereview
from livereview.corpus.inputs import batch_items
from livereview.demo import pyannote_sample_paths
from livereview.review.checks import InputError

COLUMNS = ["segment_id", "start", "end", "text", "speaker_id", "ic_ooc", "character_tag"]
SINGLE_THREAD = {"LIVEREVIEW_THREADS": "1", "OMP_NUM_THREADS": "1"}
_REFERENCE = """
import sys
import livereview
session = livereview.run(sys.argv[1], out_dir=sys.argv[2], num_speakers=int(sys.argv[3]), language="en", progress=False)
session.close()
"""


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three short recordings (parts of the demo) and a corrupt one, in one folder."""
    folder = tmp_path_factory.mktemp("recordings")
    for name, start in (("inn", 0.0), ("tower", 40.0), ("goblins", 80.0)):
        write_audio(folder / f"{name}.flac", demo_excerpt(20.0, start))
    (folder / "corrupt.flac").write_bytes(b"fLaC" + bytes(range(256)) * 40)
    return folder


def reference_run(recording: Path, out: Path, num_speakers: int) -> pd.DataFrame:
    """The recording run on its own, in a process of its own with one thread (as a batch worker has)."""
    subprocess.run(
        [sys.executable, "-c", _REFERENCE, str(recording), str(out), str(num_speakers)],
        check=True,
        timeout=600,
        env=os.environ | SINGLE_THREAD,
    )
    session = livereview.open_session(out / recording.stem)
    try:
        return session.segments[COLUMNS].reset_index(drop=True)
    finally:
        session.close()


def session_segments(directory: Path) -> pd.DataFrame:
    session = livereview.open_session(directory)
    try:
        return session.segments[COLUMNS].reset_index(drop=True)
    finally:
        session.close()


@pytest.mark.slow
def test_a_batch_runs_every_recording_and_keeps_a_bad_one_apart(recordings: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    rows = livereview.batch(recordings, out, workers=2, progress=False, num_speakers=4, language="en")
    by_id = rows.set_index("session_id")
    assert sorted(by_id.index) == ["corrupt", "goblins", "inn", "tower"]
    assert by_id.loc["corrupt", "status"] == "failed"
    assert "corrupt.flac" in by_id.loc["corrupt", "error"]
    for name in ("inn", "tower", "goblins"):
        assert by_id.loc[name, "status"] == "complete", by_id.loc[name, "error"]
        assert by_id.loc[name, "real_time_factors"]["total"] > 0
        expected = reference_run(recordings / f"{name}.flac", tmp_path / "reference", 4)
        pd.testing.assert_frame_equal(session_segments(out / name), expected)
    lines = [json.loads(line) for line in (out / "batch.jsonl").read_text().splitlines()]
    assert sorted(line["session_id"] for line in lines) == ["corrupt", "goblins", "inn", "tower"]
    # Running the batch again skips the finished sessions; the bad recording fails again.
    before = {name: (out / name / "segments.jsonl").stat().st_mtime_ns for name in ("inn", "tower", "goblins")}
    again = livereview.batch(recordings, out, workers=2, progress=False, num_speakers=4, language="en")
    again = again.set_index("session_id")
    assert again.loc[["inn", "tower", "goblins"], "skipped"].all()
    assert (again.loc[["inn", "tower", "goblins"], "status"] == "complete").all()
    assert not again.loc["corrupt", "skipped"] and again.loc["corrupt", "status"] == "failed"
    assert before == {name: (out / name / "segments.jsonl").stat().st_mtime_ns for name in before}
    # The corpus gathers the three sessions' merged views.
    corpus = livereview.open_corpus(out)
    view = corpus.view()
    assert sorted(view["session_id"].unique()) == ["goblins", "inn", "tower"]
    assert len(view) == sum(len(session_segments(out / name)) for name in ("inn", "tower", "goblins"))
    assert set(corpus.manifest()["session_id"]) == {"corrupt", "goblins", "inn", "tower"}


@pytest.mark.slow
def test_a_worker_killed_mid_recording_is_replaced_and_the_session_resumes(tmp_path: Path) -> None:
    recording = write_audio(tmp_path / "long.flac", demo_excerpt(60.0, 20.0))
    out = tmp_path / "out"
    options = {"progress": False, "num_speakers": 4, "language": "en", "chunk_length": 10}
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0", env=SINGLE_THREAD)
    with cluster, Client(cluster) as client:
        result: dict[str, pd.DataFrame] = {}
        runner = threading.Thread(
            target=lambda: result.update(rows=livereview.batch(recording, out, client, **options))
        )
        runner.start()
        chunks = out / "long" / "chunks.jsonl"
        deadline = time.monotonic() + 300
        while not (chunks.exists() and chunks.read_text().count("\n") >= 2):
            assert time.monotonic() < deadline, "no chunk completed in time"
            time.sleep(0.2)
        (pid,) = client.run(os.getpid).values()
        os.kill(pid, signal.SIGKILL)  # the worker process dies mid-recording, for real
        runner.join(600)
    (row,) = result["rows"].to_dict("records")
    assert row["status"] == "complete", row["error"]
    events = livereview.open_session(out / "long").event_log()
    starts = [e for e in events if e.kind == "stage_started" and e.stage == "run"]
    assert len(starts) == 2 and starts[1].data["resumed_from_chunk"] >= 2  # the retry resumed the session
    reference = tmp_path / "reference"
    script = _REFERENCE.replace('language="en"', 'language="en", chunk_length=10')
    subprocess.run(
        [sys.executable, "-c", script, str(recording), str(reference), "4"],
        check=True,
        timeout=600,
        env=os.environ | SINGLE_THREAD,
    )
    pd.testing.assert_frame_equal(session_segments(out / "long"), session_segments(reference / "long"))


@pytest.mark.slow
def test_a_batch_runs_on_a_scheduler_and_worker_started_with_the_dask_cli(tmp_path: Path) -> None:
    recording = write_audio(tmp_path / "table.flac", demo_excerpt(15.0))
    scheduler_file = tmp_path / "scheduler.json"
    dask = Path(sys.executable).with_name("dask")
    scheduler = subprocess.Popen(
        [str(dask), "scheduler", "--scheduler-file", str(scheduler_file), "--port", "0", "--dashboard-address", ":0"],
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        worker = subprocess.Popen(
            [str(dask), "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1", "--nworkers", "1"],
            stderr=subprocess.DEVNULL,
            env=os.environ | SINGLE_THREAD,
        )
        address = json.loads(scheduler_file.read_text())["address"]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "livereview",
                "batch",
                str(recording),
                "--scheduler",
                address,
                "--out",
                str(tmp_path / "out"),
                "--num-speakers",
                "2",
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        assert "table: complete" in result.stdout
        assert livereview.open_session(tmp_path / "out" / "table").status == "complete"
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(30)


def test_a_manifest_names_recordings_and_their_own_options(tmp_path: Path) -> None:
    (tmp_path / "a.flac").touch()
    party = tmp_path / "party.yaml"
    party.touch()
    (tmp_path / "manifest.csv").write_text(
        "path,session_id,num_speakers,party,language\na.flac,night-1,4,party.yaml,en\nb.flac,,,,\n", encoding="utf-8"
    )
    first, second = batch_items(tmp_path / "manifest.csv")
    assert (first.path, first.session_id) == (tmp_path / "a.flac", "night-1")
    assert first.options == {"num_speakers": 4, "party": str(party), "language": "en"}
    assert (second.session_id, second.options) == ("b", {})
    assert first.run_options({"num_speakers": 2, "classifier": "keywords"}) == {
        "num_speakers": 4,
        "classifier": "keywords",
        "party": str(party),
        "language": "en",
    }


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("path,speakers\na.flac,4\n", "manifest column 'speakers' is unknown"),
        ("session_id\nx\n", "the manifest needs a 'path' column"),
        ("path,session_id\na.flac,same\nb.flac,same\n", "several recordings would share session id 'same'"),
        ("path,num_speakers\na.flac,four\n", "manifest row 2: num_speakers 'four' is not a number"),
    ],
)
def test_a_bad_manifest_is_refused_before_any_work(tmp_path: Path, manifest: str, message: str) -> None:
    (tmp_path / "manifest.csv").write_text(manifest, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        livereview.batch(tmp_path / "manifest.csv", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_batch_options_are_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(InputError) as refused:
        livereview.batch(tmp_path, tmp_path / "out", num_speakers=0, speed=2)
    assert refused.value.problems == [
        "num_speakers must be at least 1; got 0",
        "unknown run option 'speed'; batch takes ('num_speakers', 'min_speakers', 'max_speakers', 'whisper_model', "
        "'language', 'device', 'diarization_pipeline', 'hub_token', 'chunk_length', 'classifier', 'party')",
    ]
    assert not (tmp_path / "out").exists()


def test_the_corpus_view_gathers_every_session(tmp_path: Path) -> None:
    sample = pyannote_sample_paths()["audio"]
    for name in ("night-1", "night-2"):
        make_session(sample, tmp_path / "out", segments=4, session_id=name).close()
    corpus = livereview.open_corpus(tmp_path / "out")
    assert corpus.session_ids == ["night-1", "night-2"]
    view = corpus.view()
    assert len(view) == 8 and view.index.is_unique and "words" not in view.columns
    assert view.index[0].endswith("/c00000-s000")
    pd.testing.assert_frame_equal(corpus.dask_view().compute(), view, check_dtype=False, check_index_type=False)
    written = corpus.export("txt", tmp_path / "exports", selection="ic")
    assert [p.name for p in written] == ["night-1-ic.txt", "night-2-ic.txt"]
    preview = corpus.preview_reclassify(classifier="keywords")
    assert len(preview) == 8 and set(preview["classifier"]) == {"keywords-0.2"}
    with pytest.raises(FileNotFoundError, match="holds no session directory"):
        livereview.open_corpus(tmp_path / "exports")


@pytest.mark.slow
def test_a_session_another_process_runs_is_followed_live(tmp_path: Path) -> None:
    recording = write_audio(tmp_path / "table.flac", demo_excerpt(30.0))
    out = tmp_path / "out"
    runner = subprocess.Popen(
        [sys.executable, "-m", "livereview", "run", str(recording), "--out", str(out), "--chunk-length", "10", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "table" / "writer.json").exists():
            assert time.monotonic() < deadline and runner.poll() is None, "the run did not start"
            time.sleep(0.05)
        session = livereview.open_session(out / "table")
        assert session.written_elsewhere()
        recorder = livereview.RecordingSubscriber()
        session.events.subscribe(recorder, name="recorder")
        session.follow_log(interval=0.1)
        summary = recorder.wait_for(lambda e: e.kind == "summary" and e.stage == "run", timeout=600)
    finally:
        runner.wait(600)
    try:
        rows = [e for e in recorder.events if e.kind == "segments"]
        assert rows and rows[0].timestamp < summary.timestamp  # rows came while the other process ran
        assert len({e.seq for e in recorder.events}) == len(recorder.events)  # each relayed once
        finished = livereview.open_session(out / "table")
        assert [s.segment_id for s in session.segment_list()] == [s.segment_id for s in finished.segment_list()]
        assert session.completed_chunks == finished.completed_chunks and not session.written_elsewhere()
        finished.close()
    finally:
        session.close()
