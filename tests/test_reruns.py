"""Partial reruns on real sessions: only the selection changes, history, anchors, atomicity, CLI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

import livereview
from livereview.core.segments import SEGMENT_COLUMNS
from livereview.core.selection import SelectionError, select_segments
from livereview.demo import demo_reference
from livereview.review.reruns import RERUN_FIELDS
from livereview.review.run import SessionSink
from livereview.stages.classify import CLASSIFICATION_COLUMNS
from livereview.stages.diarize import carry_speaker_map, name_speakers
from livereview.store.rerun_log import RerunError


@pytest.fixture
def demo_copy(demo_session, tmp_path) -> livereview.Session:
    """A private copy of the demo run, to rerun parts of."""
    directory = tmp_path / demo_session.session_id
    shutil.copytree(demo_session.directory, directory)
    session = livereview.open_session(directory)
    yield session
    session.close()


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[list(SEGMENT_COLUMNS)].astype(str)


def _reference_speaker(segments: pd.DataFrame) -> pd.Series:
    """The scripted speaker of each segment (the reference turn covering its middle)."""
    reference = demo_reference()
    middles = (segments["start"] + segments["end"]) / 2
    return middles.map(
        lambda m: next((t.speaker for t in reference.itertuples() if t.start - 0.3 <= m <= t.end + 0.3), None)
    )


# -- selections ----------------------------------------------------------------------------------


def test_every_form_of_selection(session) -> None:
    spans = session.segment_spans()
    ids = spans.index.tolist()
    assert select_segments(spans, [ids[3], ids[1]]) == [ids[1], ids[3]]
    assert select_segments(spans, segments=(ids[1], ids[3])) == ids[1:4]
    assert select_segments(spans, segments=f"{ids[1]}:{ids[3]}") == ids[1:4]
    assert select_segments(spans, chunks=[0]) == ids
    assert select_segments(spans, time="3.5:12") == [ids[1], ids[2]]  # middles at 5.5 and 9.5 s
    assert select_segments(spans, spans["text"].str.endswith(("2", "5"))) == [ids[2], ids[5]]


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ({}, "give exactly one selection"),
        ({"selection": ["c00000-s001"], "time": (0, 5)}, "got selection, time"),
        ({"selection": ["c09999-s000"]}, "unknown segment ids c09999-s000"),
        ({"segments": ("c00000-s004", "c00000-s001")}, "runs backwards"),
        ({"segments": "c00000-s001"}, "segments must be two values"),
        ({"time": (10, 5)}, "is empty: its start must come before its end"),
        ({"time": (500, 600)}, "matches no segments"),
        ({"chunks": [7]}, "no completed chunks [7]"),
        ({"selection": "c00000-s001"}, "cannot select with str"),
    ],
)
def test_bad_selections_are_refused_and_change_nothing(session, selection, message) -> None:
    before = session.paths.segments.read_bytes()
    with pytest.raises(SelectionError, match=re.escape(message)):
        session.reclassify(**selection, user="ana", classifier="keywords", progress=False)
    assert session.paths.segments.read_bytes() == before
    assert session.rerun_history().empty


def test_a_mask_must_be_indexed_by_segment_ids(session) -> None:
    mask = pd.Series([True, False], index=["c00000-s000", "elsewhere"])
    with pytest.raises(SelectionError, match="ids this session does not have"):
        session.reclassify(mask, user="ana", classifier="keywords", progress=False)


# -- reclassification ----------------------------------------------------------------------------


@pytest.mark.slow
def test_reclassify_changes_only_the_selected_segments(demo_copy) -> None:
    recorder = livereview.RecordingSubscriber()
    demo_copy.events.subscribe(recorder, name="recorder")
    before = demo_copy.segments
    ids = before.index.tolist()
    chosen = ids[10:30]

    rerun = demo_copy.reclassify(segments=(chosen[0], chosen[-1]), user="ana", classifier="keywords", progress=False)

    after = demo_copy.segments
    others = [sid for sid in ids if sid not in chosen]
    pd.testing.assert_frame_equal(_comparable(after.loc[others]), _comparable(before.loc[others]))
    untouched = [c for c in SEGMENT_COLUMNS if c not in RERUN_FIELDS["reclassify"]]
    pd.testing.assert_frame_equal(_comparable(after.loc[chosen])[untouched], _comparable(before.loc[chosen])[untouched])
    assert set(after.loc[chosen, "classifier"]) == {"keywords-0.2"}
    assert rerun.segment_ids == chosen and rerun.changed_ids
    # the same on disk, after reopening
    reopened = livereview.open_session(demo_copy.directory)
    pd.testing.assert_frame_equal(_comparable(reopened.segments), _comparable(after))

    # history: one record with every selected segment's values before and after
    lines = (demo_copy.directory / "reruns" / "history.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    assert len(lines) == 1 and record["rerun_id"] == rerun.rerun_id == "r0001"
    assert record["kind"] == "reclassify" and record["user"] == "ana" and record["model"] == "keyword_classifier"
    assert record["segment_ids"] == chosen
    for sid in chosen:
        assert record["changes"][sid]["before"]["ic_ooc"] == before.at[sid, "ic_ooc"]
        assert record["changes"][sid]["after"]["ic_ooc"] == after.at[sid, "ic_ooc"]
    diff = reopened.rerun("r0001").diff()
    assert set(diff["segment_id"]) == set(rerun.changed_ids) and diff["changed"].all()
    history = reopened.rerun_history()
    assert history.loc[0, ["rerun_id", "kind", "segments"]].tolist() == ["r0001", "reclassify", len(chosen)]
    reopened.close()

    # live events: started, the selected rows, completed
    demo_copy.events.close()
    rerun_events = [e for e in recorder.events if e.stage == "rerun"]
    assert rerun_events[0].kind == "stage_started"
    assert rerun_events[-1].kind == "stage_completed" and rerun_events[-1].data["changed"] == len(rerun.changed_ids)
    updated = [p.segment_id for e in rerun_events if e.kind == "update" for p in e.segments]
    assert updated == chosen
    assert demo_copy.metrics()["reruns"] == 1


@pytest.mark.slow
def test_reclassify_learns_from_the_operators_corrections(demo_copy) -> None:
    view = demo_copy.view()
    reference = demo_reference()
    middles = (view["start"] + view["end"]) / 2
    truth = middles.map(
        lambda m: next((t.ic_ooc for t in reference.itertuples() if t.start - 0.3 <= m <= t.end + 0.3), None)
    )
    wrong = view.index[(truth.notna()) & (truth != view["ic_ooc"])].tolist()
    assert wrong, "the default classifier made no IC/OOC mistake on the demo to correct"
    corrections = pd.DataFrame({"ic_ooc": truth[wrong]})
    demo_copy.apply_overrides(corrections, user="ana", confirm=True, reason="script says so")

    plain = demo_copy.reclassify(wrong, user="ana", use_corrections=False, progress=False)
    taught = demo_copy.reclassify(wrong, user="ana", progress=False)

    assert plain.record["parameters"]["corrections"] == 0
    assert taught.record["parameters"]["corrections"] == len(wrong)
    assert taught.record["model"].endswith(f"+{len(wrong)}corrections")
    agree_plain = sum(plain.record["changes"][s]["after"]["ic_ooc"] == truth[s] for s in wrong)
    agree_taught = sum(taught.record["changes"][s]["after"]["ic_ooc"] == truth[s] for s in wrong)
    assert agree_taught > agree_plain
    # the corrections still win in the merged view either way
    assert (demo_copy.view().loc[wrong, "ic_ooc"] == truth[wrong]).all()


def test_the_view_shows_where_a_rerun_disagrees_with_an_override(session) -> None:
    sid = "c00000-s002"
    session.set_override(sid, user="ana", ic_ooc="OOC")  # keywords will call "line 2" something else
    rerun = session.reclassify([sid, "c00000-s003"], user="ana", classifier="keywords", progress=False)
    value = rerun.record["changes"][sid]["after"]["ic_ooc"]
    assert value != "OOC"
    found = session.disagreements()
    assert found.to_dict("records") == [
        {"segment_id": sid, "field": "ic_ooc", "override": "OOC", "rerun_value": value, "rerun_id": rerun.rerun_id}
    ]
    view = session.view(show_disagreements=True)
    assert view.at[sid, "ic_ooc"] == "OOC" and view.at[sid, "disagreements"] == ("ic_ooc",)
    assert view.at["c00000-s003", "disagreements"] == ()


def test_a_preview_changes_nothing_and_matches_the_rerun(session) -> None:
    before = session.paths.segments.read_bytes()
    preview = session.preview_reclassify(classifier="keywords", progress=False)
    assert session.paths.segments.read_bytes() == before and session.rerun_history().empty
    assert preview.index.tolist() == session.segment_spans().index.tolist()
    session.reclassify(chunks=[0], user="ana", classifier="keywords", progress=False)
    after = session.segments[list(CLASSIFICATION_COLUMNS)]
    pd.testing.assert_frame_equal(preview, after, check_names=False)


def test_variants_are_for_llm_classifiers_only(session) -> None:
    with pytest.raises(ValueError, match="has no prompt variants"):
        session.reclassify(chunks=[0], user="ana", classifier="keywords", variant="terse", progress=False)


def test_viewers_cannot_rerun(session) -> None:
    with pytest.raises(PermissionError, match="read-only"):
        session.reclassify(chunks=[0], user="vic", role="viewer", classifier="keywords", progress=False)


def test_an_incomplete_session_cannot_be_rerun(session) -> None:
    SessionSink(session).set_status("running")
    with pytest.raises(RerunError, match="reruns change a completed session"):
        session.reclassify(chunks=[0], user="ana", classifier="keywords", progress=False)


def test_a_second_rerun_waits_for_the_first_one(session) -> None:
    lock = session.rerun_log.lock()
    try:
        with pytest.raises(RerunError, match="another rerun of this session is in progress"):
            session.reclassify(chunks=[0], user="ana", classifier="keywords", progress=False)
    finally:
        lock.release()


# -- never half applied --------------------------------------------------------------------------


def test_a_failing_rerun_changes_nothing(session) -> None:
    recorder = livereview.RecordingSubscriber()
    session.events.subscribe(recorder, name="recorder")
    before = session.paths.segments.read_bytes()
    calls = []

    def flaky(frame, party=None):
        calls.append(len(frame))
        if len(calls) == 2:
            raise ConnectionError("classifier server went away")
        return livereview.stages.classify.keyword_classifier(frame, party)

    with pytest.raises(ConnectionError):
        session.reclassify(chunks=[0], user="ana", classifier=flaky, batch_size=2, progress=False)
    assert len(calls) == 2  # the first batch was classified, and is not kept
    assert session.paths.segments.read_bytes() == before
    assert session.rerun_history().empty and not session.rerun_log.pending_path.exists()
    session.events.close()
    failed = [e for e in recorder.events if e.stage == "rerun" and e.kind == "error"]
    assert failed and "nothing changed" in failed[0].message


_CRASH = """
import os, sys
import livereview
from livereview.store import rerun_log
from livereview.store import results as store

point = sys.argv[2]
if point == "journal":  # killed while writing the journal: before it is in place
    rerun_log.write_json_atomic = lambda path, data: os._exit(9)
elif point == "segments":  # killed after the new segments replaced the old ones
    original = store.rewrite_jsonl
    def rewrite_then_die(path, records):
        original(path, records)
        os._exit(9)
    store.rewrite_jsonl = rewrite_then_die
session = livereview.open_session(sys.argv[1])
session.reclassify(chunks=[0], user="ana", classifier="keywords", progress=False)
"""


@pytest.mark.parametrize("point", ["journal", "segments"])
def test_a_rerun_killed_midway_is_all_or_nothing(session, tmp_path, point) -> None:
    before = session.segments
    expected = session.segments
    session.close()
    crashed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CRASH), str(session.directory), point], capture_output=True, text=True
    )
    assert crashed.returncode == 9, crashed.stderr
    reopened = livereview.open_session(session.directory)
    try:
        history = reopened.rerun_history()
        if point == "journal":  # nothing happened
            pd.testing.assert_frame_equal(_comparable(reopened.segments), _comparable(before))
            assert history.empty
        else:  # opening the session finished the commit
            assert history["rerun_id"].tolist() == ["r0001"]
            rerun = reopened.rerun("r0001")
            for sid in rerun.segment_ids:
                expected.loc[sid, list(rerun.record["changes"][sid]["after"])] = pd.Series(
                    rerun.record["changes"][sid]["after"]
                )
            pd.testing.assert_frame_equal(_comparable(reopened.segments), _comparable(expected))
            assert set(reopened.segments["classifier"]) == {"keywords-0.2"}
        assert not reopened.rerun_log.pending_path.exists()
    finally:
        reopened.close()


# -- re-diarization ------------------------------------------------------------------------------


def test_new_speakers_are_named_by_anchors_then_by_shared_speech() -> None:
    previous = [(0.0, 10.0, "SPEAKER_00"), (10.0, 20.0, "SPEAKER_01"), (20.0, 30.0, "SPEAKER_00")]
    turns = [
        (0.0, 9.0, "A"),  # mostly SPEAKER_00's speech, and an operator said who it is
        (10.0, 14.0, "B"),  # SPEAKER_01 split in two: the larger share keeps the name
        (14.0, 20.0, "C"),
        (20.0, 30.0, "D"),  # SPEAKER_00 again, now free: A took the operator's name
    ]
    anchors = [(2.0, 4.0, "Dana (headset)")]
    names, inherited = name_speakers(turns, previous, anchors, taken={"SPEAKER_00", "SPEAKER_01", "SPEAKER_02"})
    assert names == {"A": "Dana (headset)", "B": "SPEAKER_03", "C": "SPEAKER_01", "D": "SPEAKER_00"}
    assert inherited == {"A": "SPEAKER_00", "B": "SPEAKER_01", "C": "SPEAKER_01", "D": "SPEAKER_00"}
    mapping = carry_speaker_map({"SPEAKER_00": "Dana", "SPEAKER_01": "Riley"}, names, inherited, {"Dana (headset)"})
    # the new SPEAKER_03 is still Riley; the operator's own name needs no mapping
    assert mapping == {"SPEAKER_00": "Dana", "SPEAKER_01": "Riley", "SPEAKER_03": "Riley"}


@pytest.mark.slow
def test_rediarize_follows_anchors_and_keeps_the_speaker_mapping(demo_copy) -> None:
    segments = demo_copy.segments
    truth = _reference_speaker(segments)
    # name every diarized speaker after the person most of its segments are
    mapping = {
        speaker: truth[segments["speaker_id"] == speaker].mode().iloc[0] for speaker in segments["speaker_id"].unique()
    }
    demo_copy.set_speaker_map(mapping)
    start, end = 40.0, 140.0
    middles = (segments["start"] + segments["end"]) / 2
    inside = segments.index[(middles >= start) & (middles < end)].tolist()
    person = truth[inside].value_counts().index[0]  # the person who talks most in the range
    theirs = [sid for sid in inside if truth[sid] == person]
    anchor_name = f"{person} (headset)"
    for sid in theirs[:2]:
        demo_copy.set_override(sid, user="ana", speaker_id=anchor_name, allow_new_speaker=True)

    rerun = demo_copy.rediarize(time=(start, end), user="ana", num_speakers=4, progress=False)

    after = demo_copy.segments
    others = [sid for sid in segments.index if sid not in inside]
    pd.testing.assert_frame_equal(_comparable(after.loc[others]), _comparable(segments.loc[others]))
    assert rerun.segment_ids == inside
    # the two corrections carried over to the same voice elsewhere in the range
    carried = (after.loc[theirs[2:], "speaker_id"] == anchor_name).mean()
    assert carried >= 0.8, f"only {carried:.0%} of {person}'s other segments took the anchor's name"
    # everyone else kept a speaker the mapping names correctly
    players = demo_copy.speaker_map
    rest = [sid for sid in inside if truth[sid] != person and truth[sid] is not None]
    named = after.loc[rest, "speaker_id"].map(lambda s: players.get(s, s))
    assert (named == truth[rest]).mean() >= 0.8
    assert rerun.record["parameters"]["num_speakers"] == 4 and rerun.record["parameters"]["turns"] > 0
    # the stored turns of the range are the new ones
    turns = demo_copy.diarization()
    inner = turns[(turns["start"] + turns["end"]) / 2 >= start]
    inner = inner[(inner["start"] + inner["end"]) / 2 < end]
    assert anchor_name in set(inner["speaker_id"])
    assert demo_copy.rerun_history()["kind"].tolist() == ["rediarize"]


# -- command line --------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "livereview", *args], capture_output=True, text=True, timeout=600)


def test_rerun_from_the_command_line(session) -> None:
    directory = str(session.directory)
    session.close()
    done = _cli(
        "rerun",
        directory,
        "reclassify",
        "--segments",
        "c00000-s001:c00000-s003",
        "--classifier",
        "keywords",
        "--user",
        "ana",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("r0001: reclassify of 3 segments")
    done = _cli("rerun", directory, "reclassify", "--time", "0:6", "--classifier", "keywords", "--user", "ana")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("r0002: reclassify of 2 segments")
    listed = _cli("rerun", directory, "history")
    assert listed.returncode == 0 and "r0001" in listed.stdout and "r0002" in listed.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reclassify", "--user", "ana"], "say which segments to reclassify"),
        (["reclassify", "--chunks", "0"], "--user is required"),
        (["reclassify", "--segments", "c00000-s003:c00000-s001", "--user", "ana"], "runs backwards"),
        (["reclassify", "--chunks", "a,b", "--user", "ana"], "--chunks takes comma-separated chunk ids"),
        (["rediarize", "--time", "0:9", "--num-speakers", "0", "--user", "ana"], "num_speakers must be at least 1"),
    ],
)
def test_rerun_command_line_errors(session, args, message) -> None:
    directory = str(session.directory)
    session.close()
    done = _cli("rerun", directory, *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_an_unknown_rerun_id_names_the_ones_there_are(session) -> None:
    with pytest.raises(KeyError, match="no rerun 'r0001' in this session \\(reruns: none yet\\)"):
        session.rerun("r0001")
    session.reclassify(chunks=[0], user="ana", classifier="keywords", progress=False)
    with pytest.raises(KeyError, match="no rerun 'r0009' in this session \\(reruns: r0001\\)"):
        session.rerun("r0009")
