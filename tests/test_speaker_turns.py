"""Speaker outputs from the turns: RTTM export and ``Session.diarization()`` with corrections, on real runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from downstream_helpers import copy_session
from pyannote.core import Annotation
from pyannote.core import Segment as Span
from pyannote.database.util import load_rttm
from pyannote.metrics.diarization import DiarizationErrorRate

import livereview
from livereview.core.turns import ChunkSpeakers
from livereview.demo import demo_audio_path, demo_rttm_path
from livereview.review.attribution import word_speaker_accuracy
from livereview.stages.diarize import speakers as clustering
from livereview.stages.diarize.diarizer import owned_turns
from livereview.stages.diarize.speakers import SpeakerRegistry
from livereview.stages.pipeline import recluster_due, recluster_now

pytestmark = pytest.mark.slow


def _annotation(turns: pd.DataFrame) -> Annotation:
    annotation = Annotation()
    for index, turn in enumerate(turns.itertuples(index=False)):
        annotation[Span(turn.start, turn.end), index] = turn.speaker_id
    return annotation


def _exported(session: livereview.Session, path: Path) -> Annotation:
    return next(iter(load_rttm(str(session.export("rttm", path))).values()))


def _der(reference: Annotation, hypothesis: Annotation) -> float:
    return DiarizationErrorRate(collar=0.0, skip_overlap=False)(reference, hypothesis)


@pytest.mark.parametrize("which", ["sample", "demo"])
def test_the_rttm_export_scores_as_the_turns(which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    session = request.getfixturevalue(f"{which}_session")
    rttm = request.getfixturevalue("sample")["rttm"] if which == "sample" else demo_rttm_path()
    reference = next(iter(load_rttm(str(rttm)).values()))
    turns = session.diarization()
    exported = _exported(session, tmp_path / f"{which}.rttm")
    assert abs(_der(reference, exported) - _der(reference, _annotation(turns))) <= 0.005
    # every stretch of diarized speech is in the export, also where no transcript segment is
    raw = _annotation(session.diarization(corrected=False)).get_timeline().support()
    assert raw.crop(exported.get_timeline().support()).duration() == pytest.approx(raw.duration(), abs=0.01)


#: Word-level speaker accuracy to reach (measured 0.96 on the sample, 0.99 on the demo).
WORD_ACCURACY = {"sample": 0.90, "demo": 0.95}


@pytest.mark.parametrize("which", ["sample", "demo"])
def test_each_word_carries_the_speaker_heard_during_it(which: str, request: pytest.FixtureRequest) -> None:
    session = request.getfixturevalue(f"{which}_session")
    rttm = request.getfixturevalue("sample")["rttm"] if which == "sample" else demo_rttm_path()
    reference = next(iter(load_rttm(str(rttm)).values()))
    words = session.words()
    view = session.view()
    assert len(words) == sum(len(w) for w in view["words"])  # every word of the view, once
    assert words["speaker_id"].notna().all()
    truth = pd.DataFrame(
        [(turn.start, turn.end, label) for turn, _, label in reference.itertracks(yield_label=True)],
        columns=["start", "end", "speaker_id"],
    )
    assert word_speaker_accuracy(words, truth) >= WORD_ACCURACY[which]


def test_emitted_segment_ids_are_never_reused_for_other_speech(sample_session: livereview.Session) -> None:
    spans: dict[str, tuple[float, float]] = {}
    for event in sample_session.recorder.events:
        for row in event.segments:
            span = (round(row.start, 3), round(row.end, 3))
            assert spans.setdefault(row.segment_id, span) == span, row.segment_id
    view = sample_session.view()
    assert set(view.index) == set(spans)
    assert all(spans[sid] == (round(r.start, 3), round(r.end, 3)) for sid, r in view.iterrows())


def test_a_speaker_correction_reaches_the_rttm_export(demo_session: livereview.Session, tmp_path: Path) -> None:
    session = copy_session(demo_session, tmp_path / "copy")
    view = session.view()
    row = view[view["speaker_id"].notna()].iloc[len(view) // 2]
    other = sorted(set(view["speaker_id"].dropna()) - {row["speaker_id"]})[0]
    session.set_override(row["segment_id"], user="ana", speaker_id=other)
    exported = _exported(session, tmp_path / "corrected.rttm")
    inside = exported.crop(Span(row["start"], row["end"]), mode="intersection")
    assert other in inside.labels()
    assert inside.label_duration(row["speaker_id"]) == pytest.approx(0.0, abs=0.01)  # not the model's speaker there
    turns = session.diarization()
    within = turns[(turns["start"] >= row["start"] - 1e-6) & (turns["end"] <= row["end"] + 1e-6)]
    assert other in set(within["speaker_id"]) and row["speaker_id"] not in set(within["speaker_id"])
    session.close()


def test_each_chunk_keeps_only_the_turns_of_its_own_span(demo_session: livereview.Session) -> None:
    spans = {row.chunk_id: (row.start, row.end) for row in demo_session.chunks.itertuples()}
    assert len(spans) > 1
    for chunk in demo_session.speaker_chunks():
        start, end = spans[chunk.chunk_id]
        assert all(start <= turn_start < turn_end <= end for turn_start, turn_end, _ in chunk.turns)


def test_turns_are_cropped_to_the_chunk_span_and_outside_ones_dropped() -> None:
    turns = [(8.0, 9.5, "A"), (9.0, 12.5, "B"), (19.5, 21.0, "A"), (20.0, 22.0, "B"), (15.0, 16.0, "C")]
    assert owned_turns(turns, 10.0, 20.0) == [(10.0, 12.5, "B"), (19.5, 20.0, "A"), (15.0, 16.0, "C")]
    assert owned_turns([(9.0, 10.0004, "A")], 10.0, 20.0) == []  # rounds to nothing


def test_reclustering_during_the_run_comes_at_doubling_chunk_counts() -> None:
    assert [n for n in range(1, 70) if recluster_due(4, n)] == [4, 8, 16, 32, 64]
    assert not any(recluster_due(None, n) for n in range(1, 70))


def test_the_registry_adopts_reclustered_labels_and_never_reuses_a_name() -> None:
    east, west, north = np.eye(3, dtype=np.float32)
    chunk = ChunkSpeakers(0, [(0.0, 2.0, "A"), (2.0, 4.0, "B")], np.stack([east, west]), ["SPEAKER_02", "SPEAKER_00"])
    registry = SpeakerRegistry(link_threshold=0.7)
    registry.adopt([chunk])
    later = ChunkSpeakers(1, [(4.0, 6.0, "A"), (6.0, 8.0, "B"), (8.0, 9.0, "C")], np.stack([west, east, north]))
    registry.link(later)
    assert later.speakers == ["SPEAKER_00", "SPEAKER_02", "SPEAKER_01"]  # the new voice takes a free name


def test_live_labels_are_reclustered_during_the_run(demo_session: livereview.Session) -> None:
    events = demo_session.event_log()
    reclustered_after, chunks_done, passes = set(), 0, []
    for event in events:
        if event.kind == "chunk_completed":
            chunks_done += 1
        elif event.kind == "stage_completed" and event.stage in ("recluster", "global"):
            passes.append(event.stage)
            reclustered_after |= {chunks_done} if event.stage == "recluster" else set()
    assert passes[-1] == "global" and "global" not in passes[:-1]
    scheduled = {n for n in range(1, chunks_done + 1) if recluster_due(4, n)}
    assert scheduled and scheduled <= reclustered_after  # right after the fourth chunk, the eighth, ...


def test_a_new_voice_past_the_speaker_count_is_linked_as_new_and_reclustered_at_once() -> None:
    east, west, north = np.eye(3, dtype=np.float32)
    registry = SpeakerRegistry(link_threshold=0.7)
    chunk = ChunkSpeakers(0, [(0.0, 2.0, "A"), (2.0, 4.0, "B"), (4.0, 5.0, "C")], np.stack([east, west, north]))
    registry.link(chunk)
    assert chunk.speakers == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02"]  # not forced onto a known voice
    bounded = livereview.DiarizeOptions(num_speakers=2, recluster_after=4)
    assert recluster_now(bounded, chunks=1, speakers=3)
    assert not recluster_now(bounded, chunks=3, speakers=2)
    assert recluster_now(bounded, chunks=4, speakers=2)
    assert not recluster_now(livereview.DiarizeOptions(recluster_after=4), chunks=4, speakers=9)
    assert not recluster_now(livereview.DiarizeOptions(num_speakers=2, recluster_after=None), chunks=4, speakers=3)


#: Online DER of the demo's turns as labelled when their chunk completed (4 speakers given):
#: measured 0.107 (0.218 when the links were forced onto the count, before reclustering then).
ONLINE_DEMO_DER = 0.12


def test_live_labels_on_the_demo_are_close_to_the_final_ones(demo_session: livereview.Session) -> None:
    online = Annotation()
    for event in demo_session.event_log():
        if event.kind == "chunk_completed":
            for start, end, speaker in event.data["turns"]:
                online[Span(start, end), len(online)] = speaker
    reference = next(iter(load_rttm(str(demo_rttm_path())).values()))
    assert _der(reference, online) <= ONLINE_DEMO_DER


#: Without a speaker count or party: DER and speakers found (measured 0.071 with 2 on the sample,
#: 0.068 with 4 on the demo; before small clusters were merged 0.199 with 4, and 0.176 with 15).
NO_COUNT = {"sample": (0.12, 2), "demo": (0.12, 4)}


@pytest.mark.parametrize("which", ["sample", "demo"])
def test_without_a_count_the_speakers_found_are_the_voices_heard(which: str, sample, tmp_path: Path) -> None:
    audio, rttm = (sample["audio"], sample["rttm"]) if which == "sample" else (demo_audio_path(), demo_rttm_path())
    session = livereview.run(audio, out_dir=tmp_path, progress=False)
    turns = session.diarization()
    session.close()
    reference = next(iter(load_rttm(str(rttm)).values()))
    highest_der, voices = NO_COUNT[which]
    assert session.options.diarize.speaker_limit is None
    assert abs(turns["speaker_id"].nunique() - voices) <= 1
    assert _der(reference, _annotation(turns)) <= highest_der


def test_a_long_session_clusters_a_spread_of_its_turns_and_the_rest_join_the_nearest(
    demo_session: livereview.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = demo_session.speaker_chunks()
    options = demo_session.options.diarize
    usable = sum(int(chunk.usable().sum()) for chunk in chunks)
    whole = clustering.recluster(chunks, options)
    monkeypatch.setattr(clustering, "MAX_CLUSTERED_TURNS", usable // 3)
    spread = clustering.recluster(chunks, options)
    durations = [end - start for chunk in chunks for start, end, _ in chunk.turns]
    agreeing = [a == b for chunk in chunks for a, b in zip(whole[chunk.chunk_id], spread[chunk.chunk_id], strict=True)]
    assert np.average(agreeing, weights=durations) >= 0.9
    relabelled = pd.DataFrame(
        [(s, e, name) for chunk in chunks for (s, e, _), name in zip(chunk.turns, spread[chunk.chunk_id], strict=True)],
        columns=["start", "end", "speaker_id"],
    )
    reference = next(iter(load_rttm(str(demo_rttm_path())).values()))
    assert _der(reference, _annotation(relabelled)) <= 0.12


def test_a_recluster_during_the_run_appends_what_it_changed_and_readers_take_the_last(
    demo_session: livereview.Session, tmp_path: Path
) -> None:
    session = copy_session(demo_session, tmp_path)
    follower = livereview.open_session(session.directory)
    segment = session.segment_list()[0]
    chunk = next(c for c in session.speaker_chunks() if c.chunk_id == segment.chunk_id)
    lines = (
        len(session.paths.segments.read_text().splitlines()),
        len(session.paths.diarization.read_text().splitlines()),
    )
    segment.speaker_id = "SPEAKER_09"
    revised = ChunkSpeakers(chunk.chunk_id, chunk.turns, chunk.embeddings, ["SPEAKER_09"] * len(chunk.turns))
    session._store.append_revisions([segment], [revised])
    after = (
        len(session.paths.segments.read_text().splitlines()),
        len(session.paths.diarization.read_text().splitlines()),
    )
    assert after == (lines[0] + 1, lines[1] + 1)  # appended, not rewritten
    follower._store.refresh()
    for reader in (livereview.open_session(session.directory), follower):
        assert {s.segment_id: s for s in reader.segment_list()}[segment.segment_id].speaker_id == "SPEAKER_09"
        read = next(c for c in reader.speaker_chunks() if c.chunk_id == chunk.chunk_id)
        assert set(read.speakers) == {"SPEAKER_09"}
        assert len(reader.speaker_chunks()) == len(demo_session.speaker_chunks())
        assert len(reader.segment_list()) == len(demo_session.segment_list())
