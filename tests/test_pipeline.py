"""The whole pipeline on real speech: accuracy, streaming events, the session directory."""

from __future__ import annotations

import json
import re

import jiwer
import pytest
from pyannote.core import Annotation
from pyannote.core import Segment as Span
from pyannote.database.util import load_rttm
from pyannote.metrics.diarization import DiarizationErrorRate

import livereview
from livereview.core import events
from livereview.core.segments import SEGMENT_COLUMNS

pytestmark = pytest.mark.slow


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())


def test_diarization_error_rate_on_the_sample(sample_session, sample) -> None:
    reference = next(iter(load_rttm(sample["rttm"]).values()))
    hypothesis = Annotation()
    for turn in sample_session.diarization().itertuples():
        hypothesis[Span(turn.start, turn.end)] = turn.speaker_id
    der = DiarizationErrorRate(collar=0.0, skip_overlap=False)(reference, hypothesis)
    assert der <= 0.10, f"DER {der:.3f}"


def test_word_error_rate_on_the_sample(sample_session, sample) -> None:
    reference = " ".join(_words(line.split(maxsplit=5)[5]) for line in sample["stm"].read_text().splitlines())
    hypothesis = " ".join(_words(text) for text in sample_session.segments["text"])
    wer = jiwer.wer(reference, hypothesis)
    assert wer <= 0.25, f"WER {wer:.3f}"


def test_segment_table_has_every_column_and_final_statuses(sample_session) -> None:
    table = sample_session.segments
    assert list(table.columns) == list(SEGMENT_COLUMNS)
    assert len(table) >= 3
    assert table["segment_id"].is_unique
    assert (table["start"] < table["end"]).all()
    assert table["speaker_id"].nunique() <= 2  # the count given; names keep the numbers the run gave them
    assert table["speaker_id"].str.fullmatch(r"SPEAKER_\d\d").all()
    assert table["ic_ooc"].isin(["IC", "OOC", "MIXED"]).all()
    assert table["status"].isin(["classified", "needs attention"]).all()
    assert table["asr_model"].eq("faster-whisper:tiny.en").all()
    assert table["words"].map(len).gt(0).all()


def test_events_stream_chunk_by_chunk_in_order(sample_session) -> None:
    received = sample_session.recorder.events
    assert [e.seq for e in received] == list(range(received[0].seq, received[0].seq + len(received)))
    kinds = [e.kind for e in received]
    assert kinds[0] == events.STAGE_STARTED and received[0].stage == "run"
    assert kinds[-1] == events.SUMMARY
    assert all(len(e.segments) <= events.MAX_SEGMENTS_PER_EVENT for e in received)
    # per chunk: segments appear as transcribed, then get speakers, then labels, then the chunk completes
    first_seen: dict[str, list[str]] = {}
    for event in received:
        for payload in event.segments:
            first_seen.setdefault(payload.segment_id, []).append(payload.status)
    for statuses in first_seen.values():
        assert statuses[0] == "transcribed"
        assert statuses[1] == "diarized"
        assert statuses[2] in {"classified", "needs attention"}
    completed = [i for i, e in enumerate(received) if e.kind == events.CHUNK_COMPLETED]
    transcribed = [i for i, e in enumerate(received) if e.kind == events.SEGMENTS]
    assert completed and transcribed[0] < completed[0]
    # each completed chunk tells its speaker turns as they stand then, inside its own span
    chunk_start, diarized_speakers = 0.0, {}
    for event in received:
        if event.kind == events.UPDATE and event.stage == "diarize":
            diarized_speakers[event.chunk_id] = {row.speaker_id for row in event.segments if row.speaker_id}
        if event.kind != events.CHUNK_COMPLETED:
            continue
        turns = event.data["turns"]
        assert turns and all(chunk_start <= start < end <= event.position for start, end, _ in turns)
        assert diarized_speakers[event.chunk_id] <= {speaker for _, _, speaker in turns}
        chunk_start = event.position
    # the event log on disk holds the same stream
    assert [e.seq for e in sample_session.event_log()] == [e.seq for e in received]


def test_session_directory_can_be_reopened(sample_session) -> None:
    directory = sample_session.directory
    metadata = json.loads((directory / "metadata.json").read_text())
    assert metadata["status"] == "complete"
    assert metadata["audio"]["sha256"]
    assert metadata["models"]["asr"] == "faster-whisper:tiny.en"
    assert metadata["config"]["diarize"]["num_speakers"] == 2
    assert (directory / "stages" / "transcription.jsonl").exists()
    assert (directory / "stages" / "diarization.jsonl").exists()
    metrics = json.loads((directory / "metrics.json").read_text())
    assert metrics["real_time_factors"]["total"] > 0
    reopened = livereview.open_session(directory)
    assert reopened.segments.drop(columns="words").equals(sample_session.segments.drop(columns="words"))
    assert reopened.completed_chunks == sample_session.completed_chunks


def test_background_run_streams_rows_before_it_ends(tmp_path, sample) -> None:
    session = livereview.Session.create(
        sample["audio"],
        out_dir=tmp_path,
        options=livereview.RunOptions(chunk=livereview.ChunkOptions.from_value(8.0)),
    )
    recorder = livereview.RecordingSubscriber()
    session.events.subscribe(recorder)
    session.start()
    first = recorder.wait_for(lambda e: e.kind == events.SEGMENTS, timeout=120)
    done = recorder.wait_for(lambda e: e.kind == events.SUMMARY, timeout=300)
    session.wait()
    assert first.seq < done.seq
    chunk_events = [e for e in recorder.events if e.kind == events.CHUNK_COMPLETED]
    assert len(chunk_events) >= 3
    # rows of the first chunk were complete (speaker and label) before the last chunk was transcribed
    first_chunk_done = chunk_events[0].seq
    last_transcribed = max(e.seq for e in recorder.events if e.kind == events.SEGMENTS)
    assert first_chunk_done < last_transcribed
    session.close()


def test_the_global_pass_is_emitted(sample_session) -> None:
    received = sample_session.recorder.events
    stages = [(e.kind, e.stage) for e in received]
    assert (events.STAGE_STARTED, "global") in stages
    completed = next(e for e in received if e.kind == events.STAGE_COMPLETED and e.stage == "global")
    revised = [p for e in received if e.kind == events.UPDATE and e.stage == "global" for p in e.segments]
    assert completed.data["revised"] == len(revised)
