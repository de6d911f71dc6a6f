"""The append-only override store: validation, batches, undo, index, crashes, concurrency."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from livereview.core.segments import CLASSIFIED, Segment, segment_id_for, segments_to_frame
from livereview.store import overrides as overrides_module
from livereview.store.overrides import (
    RECORD_COLUMNS,
    ConfirmationRequiredError,
    EditContext,
    OverrideError,
    OverrideRecord,
    OverrideStore,
)

SESSION_ID = "demo_session"
REPO = Path(__file__).resolve().parents[1]
#: Chunk length used to give the reference turns chunk ids, in seconds.
CHUNK_S = 10.0

#: Used when the bundled demo reference is not available: turns in its shape.
FALLBACK_TURNS = pd.DataFrame(
    [
        (1.0, 4.2, "Dana", "Alright everyone, let's get started.", "OOC", "TABLE_TALK", ""),
        (4.7, 7.9, "Dana", "Rain drums on the roof of the inn.", "IC", "DM_NARRATION", "DM"),
        (8.4, 11.0, "Dana", "What can old Tom get for you?", "IC", "NPC_DIALOGUE", "Tom"),
        (11.6, 13.5, "Alex", "Mira orders a cider.", "IC", "CHARACTER_ACTION", "Mira"),
        (14.1, 16.0, "Sam", "Can I roll for that?", "OOC", "MECHANICS", ""),
        (
            16.6,
            19.3,
            "Sam",
            "Borin slams his mug, pass the dice.",
            "MIXED",
            "CHARACTER_SPEECH",
            "Borin",
        ),
        (19.9, 22.4, "Riley", "Kestrel watches the door.", "IC", "CHARACTER_ACTION", "Kestrel"),
        (23.0, 25.1, "Riley", "Is the pizza here yet?", "OOC", "TABLE_TALK", ""),
    ],
    columns=["start", "end", "speaker", "text", "ic_ooc", "segment_type", "character_tag"],
)


def reference_turns() -> pd.DataFrame:
    """The demo recording's reference utterances, or :data:`FALLBACK_TURNS`."""
    try:
        from livereview.demo import demo_reference

        return demo_reference()
    except (ImportError, OSError):
        return FALLBACK_TURNS


def segment_table(turns: pd.DataFrame) -> pd.DataFrame:
    """Segment table of the turns, chunked every :data:`CHUNK_S` seconds."""
    per_chunk: Counter[int] = Counter()
    segments = []
    for turn in turns.itertuples(index=False):
        chunk = int(turn.start // CHUNK_S)
        segments.append(
            Segment(
                SESSION_ID,
                segment_id_for(chunk, per_chunk[chunk]),
                chunk,
                turn.start,
                turn.end,
                turn.text,
                speaker_id=turn.speaker,
                ic_ooc=turn.ic_ooc,
                segment_type=turn.segment_type,
                character_tag=turn.character_tag,
                status=CLASSIFIED,
            )
        )
        per_chunk[chunk] += 1
    return segments_to_frame(segments)


def context_of(segments: pd.DataFrame) -> EditContext:
    """Every chunk but the last is completed; the speakers of the table are known."""
    chunks = set(segments["chunk_id"].astype(int))
    return EditContext(segments, chunks - {max(chunks)}, set(segments["speaker_id"].dropna()))


@pytest.fixture(scope="module")
def segments() -> pd.DataFrame:
    return segment_table(reference_turns())


@pytest.fixture
def context(segments: pd.DataFrame) -> EditContext:
    return context_of(segments)


@pytest.fixture
def session_dir(tmp_path: Path, segments: pd.DataFrame) -> Path:
    segments.to_pickle(tmp_path / "segments.pkl")  # for child processes
    return tmp_path


@pytest.fixture
def store(session_dir: Path, context: EditContext) -> OverrideStore:
    return OverrideStore(session_dir, SESSION_ID, lambda: context)


@pytest.fixture
def ids(context: EditContext) -> list[str]:
    """Ids of segments in completed chunks, in time order."""
    done = context.segments["chunk_id"].isin(context.completed_chunks)
    return context.segments.index[done].tolist()


def log_size(store: OverrideStore) -> int:
    return store.log_path.stat().st_size


def other_speaker(context: EditContext, segment_id: str) -> str:
    base = context.segments.at[segment_id, "speaker_id"]
    return sorted(context.known_speakers - {base})[0]


# -- records ---------------------------------------------------------------------------------


def test_record_round_trips_through_dict_and_json(store: OverrideStore, ids: list[str]) -> None:
    [record] = store.set(ids[0], user="ana", text="Hello there.", reason="typo")
    assert OverrideRecord.from_dict(record.to_dict()) == record
    assert OverrideRecord.from_dict(json.loads(record.to_json())) == record
    assert len(record.override_id) == 32
    assert len(record.batch_id) == 32
    assert datetime.fromisoformat(record.timestamp).utcoffset() == timedelta(0)
    assert (record.session_id, record.user, record.role, record.op) == (
        SESSION_ID,
        "ana",
        "editor",
        "set",
    )


def test_record_refuses_unknown_fields() -> None:
    with pytest.raises(ValueError, match="unknown override record fields"):
        OverrideRecord.from_dict({"override_id": "x", "colour": "red"})


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"asr_confidence": 1.0}, "not an overridable field"),
        ({"start": -1.0}, "must be a time in seconds"),
        ({"end": "late"}, "must be a time in seconds"),
        ({"start": 100.0}, "must come before end"),
        ({"split": 3}, "a split must be"),
        ({"merged_into": "c00000-s001"}, "merges into the segment right before it"),
        ({"ic_ooc": "BOTH"}, "not one of"),
        ({"text": "   "}, "text is empty"),
        ({"text": "x" * 2001}, "over the limit of 2000"),
        ({"speaker_id": "Zed"}, "unknown speaker 'Zed'"),
        ({"speaker_id": ""}, "speaker is empty"),
        ({"confidence_flag": "yes"}, "must be True or False"),
        ({"confidence_flag": 1}, "must be True or False"),
        ({"character_tag": 3}, "must be a string"),
    ],
)
def test_invalid_values_are_refused_naming_segment_and_field(
    store: OverrideStore, ids: list[str], fields: dict, message: str
) -> None:
    with pytest.raises(OverrideError, match=message) as error:
        store.set(ids[0], user="ana", **fields)
    assert repr(ids[0]) in str(error.value)
    assert repr(next(iter(fields))) in str(error.value)
    assert log_size(store) == 0


def test_unknown_segment_is_refused(store: OverrideStore) -> None:
    with pytest.raises(OverrideError, match="'c99999-s000', field 'text': unknown segment"):
        store.set("c99999-s000", user="ana", text="hi")


def test_segment_of_unfinished_chunk_is_refused(store: OverrideStore, context: EditContext) -> None:
    pending = context.segments.index[~context.segments["chunk_id"].isin(context.completed_chunks)]
    with pytest.raises(OverrideError, match=f"'{pending[0]}', field 'text': chunk .* not completed"):
        store.set(pending[0], user="ana", text="hi")
    assert log_size(store) == 0


def test_new_speaker_needs_permission(store: OverrideStore, ids: list[str]) -> None:
    [record] = store.set(ids[0], user="ana", speaker_id="Guest", allow_new_speaker=True)
    assert record.value == "Guest"
    assert store.current_values()[ids[0]] == {"speaker_id": "Guest"}


def test_viewer_may_not_write(store: OverrideStore, ids: list[str]) -> None:
    with pytest.raises(PermissionError, match="role 'viewer' is read-only"):
        store.set(ids[0], user="val", role="viewer", text="hi")
    with pytest.raises(PermissionError, match="read-only"):
        store.undo_last_batch("val", role="viewer")
    assert log_size(store) == 0


def test_unknown_role_and_missing_user_are_refused(store: OverrideStore, ids: list[str]) -> None:
    with pytest.raises(OverrideError, match="unknown role 'owner'"):
        store.set(ids[0], user="ana", role="owner", text="hi")
    with pytest.raises(OverrideError, match="user must be a non-empty name"):
        store.set(ids[0], user=" ", text="hi")
    with pytest.raises(OverrideError, match="no field given"):
        store.set(ids[0], user="ana")


def test_admin_may_write(store: OverrideStore, ids: list[str]) -> None:
    [record] = store.set(ids[0], user="root", role="admin", confidence_flag=True)
    assert (record.role, record.value, record.previous_value) == ("admin", True, False)


# -- batches ---------------------------------------------------------------------------------


def test_batch_is_all_or_nothing(store: OverrideStore, ids: list[str]) -> None:
    store.set(ids[0], user="ana", text="Kept.")
    size = log_size(store)
    frame = pd.DataFrame({"segment_id": [*ids[1:4], "c99999-s000"], "ic_ooc": ["OOC", "IC", "MIXED", "IC"]})
    with pytest.raises(OverrideError, match="1 override"):
        store.apply_batch(frame, user="ana", confirm=True)
    assert log_size(store) == size
    assert len(store.log()) == 1


def test_batch_reports_every_problem(store: OverrideStore, ids: list[str]) -> None:
    frame = pd.DataFrame({"segment_id": ids[:3], "ic_ooc": ["nope", "IC", "never"]})
    with pytest.raises(OverrideError, match="2 override") as error:
        store.apply_batch(frame, user="ana", confirm=True)
    assert repr(ids[0]) in str(error.value)
    assert repr(ids[2]) in str(error.value)


def test_batch_needs_confirmation(store: OverrideStore, ids: list[str]) -> None:
    frame = pd.DataFrame(
        {
            "segment_id": ids[:3],
            "ic_ooc": ["OOC", None, "IC"],
            "confidence_flag": [True, True, None],
        }
    )
    with pytest.raises(ConfirmationRequiredError, match="4 fields on 3 segments") as error:
        store.apply_batch(frame, user="ana", confirm=False)
    assert "confirm=True" in str(error.value)
    assert log_size(store) == 0

    batch_id = store.apply_batch(frame, user="ana", confirm=True, reason="relabel")
    log = store.log()
    assert len(log) == 4
    assert set(log["batch_id"]) == {batch_id}
    assert set(log["reason"]) == {"relabel"}
    assert store.current_values() == {
        ids[0]: {"ic_ooc": "OOC", "confidence_flag": True},
        ids[1]: {"confidence_flag": True},
        ids[2]: {"ic_ooc": "IC"},
    }


def test_batch_takes_segment_ids_from_the_index(store: OverrideStore, ids: list[str]) -> None:
    frame = pd.DataFrame({"character_tag": ["Mira", float("nan")]}, index=ids[:2])
    store.apply_batch(frame, user="ana", confirm=True)
    assert store.current_values() == {ids[0]: {"character_tag": "Mira"}}


def test_batch_refuses_repeated_segments_and_empty_frames(store: OverrideStore, ids: list[str]) -> None:
    with pytest.raises(OverrideError, match="more than once"):
        store.apply_batch(
            pd.DataFrame({"segment_id": [ids[0], ids[0]], "text": ["a", "b"]}),
            user="ana",
            confirm=True,
        )
    with pytest.raises(OverrideError, match="no filled cell"):
        store.apply_batch(pd.DataFrame({"segment_id": ids[:1], "text": [None]}), user="ana", confirm=True)
    assert log_size(store) == 0


def test_batch_refuses_columns_that_are_not_fields(store: OverrideStore, ids: list[str]) -> None:
    frame = pd.DataFrame({"segment_id": ids[:1], "status": ["edited"]})
    with pytest.raises(OverrideError, match=f"'{ids[0]}', field 'status': not an overridable field"):
        store.apply_batch(frame, user="ana", confirm=True)


# -- folding ---------------------------------------------------------------------------------


def test_last_write_wins_by_seq(store: OverrideStore, context: EditContext, ids: list[str]) -> None:
    base = context.segments.at[ids[0], "text"]
    first = store.set(ids[0], user="ana", text="First.")[0]
    second = store.set(ids[0], user="bob", text="Second.")[0]
    assert (first.seq, second.seq) == (1, 2)
    assert (first.previous_value, second.previous_value) == (base, "First.")
    assert store.current_values() == {ids[0]: {"text": "Second."}}
    [row] = store.current().to_dict("records")
    assert (row["value"], row["base_value"], row["user"], row["seq"]) == ("Second.", base, "bob", 2)


def test_log_lists_every_record(store: OverrideStore, ids: list[str]) -> None:
    store.set(ids[0], user="ana", text="One.", ic_ooc="OOC")
    store.set(ids[1], user="ana", confidence_flag=True)
    log = store.log()
    assert list(log.columns) == list(RECORD_COLUMNS)
    assert log["seq"].tolist() == [1, 2, 3]
    assert log["batch_id"].nunique() == 2


def test_undo_walks_back_one_users_batches(store: OverrideStore, context: EditContext, ids: list[str]) -> None:
    speaker = other_speaker(context, ids[0])
    first = store.set(ids[0], user="ana", speaker_id=speaker)[0].batch_id
    second = store.set(ids[0], user="ana", speaker_id="Guest", allow_new_speaker=True)[0].batch_id
    store.set(ids[1], user="ana", text="Also in the second batch?")  # third batch
    bob = store.set(ids[2], user="bob", ic_ooc="MIXED")[0].batch_id

    third = store.log()["batch_id"].iloc[2]
    assert store.undo_last_batch("ana") == third
    assert store.current_values() == {ids[0]: {"speaker_id": "Guest"}, ids[2]: {"ic_ooc": "MIXED"}}
    assert store.undo_last_batch("ana") == second
    assert store.current_values()[ids[0]] == {"speaker_id": speaker}
    assert store.undo_last_batch("ana") == first
    assert store.current_values() == {ids[2]: {"ic_ooc": "MIXED"}}
    assert store.undo_last_batch("ana") is None

    log = store.log()
    assert log["op"].tolist() == ["set"] * 4 + ["revert"] * 3
    reverts = log[log["op"] == "revert"]
    assert reverts["reverts"].tolist() == [third, second, first]
    assert reverts["value"].tolist() == [
        context.segments.at[ids[1], "text"],
        speaker,
        context.segments.at[ids[0], "speaker_id"],
    ]
    assert reverts["restores_base"].tolist() == [True, False, True]
    assert store.undo_last_batch("bob") == bob
    assert store.current_values() == {}


def test_undo_of_a_batch_reverts_all_its_fields(store: OverrideStore, ids: list[str]) -> None:
    frame = pd.DataFrame({"segment_id": ids[:2], "ic_ooc": ["MIXED", "MIXED"]})
    batch_id = store.apply_batch(frame, user="ana", confirm=True)
    assert store.undo_last_batch("ana") == batch_id
    assert store.current_values() == {}
    assert store.current().empty


def test_subscribers_hear_each_batch_once_on_disk(store: OverrideStore, ids: list[str]) -> None:
    heard: list[tuple[int, int]] = []
    unsubscribe = store.subscribe(lambda records: heard.append((len(records), log_size(store))))
    store.set(ids[0], user="ana", text="Heard.", ic_ooc="OOC")
    size = log_size(store)
    unsubscribe()
    store.set(ids[1], user="ana", text="Not heard.")
    assert heard == [(2, size)]


def test_a_failing_subscriber_does_not_fail_the_write(store: OverrideStore, ids: list[str]) -> None:
    def broken(records: list[OverrideRecord]) -> None:
        raise RuntimeError("widget gone")

    store.subscribe(broken)
    assert store.set(ids[0], user="ana", text="Still written.")
    assert len(store.log()) == 1


def test_stores_on_one_session_see_each_others_records(session_dir: Path, context: EditContext, ids: list[str]) -> None:
    first = OverrideStore(session_dir, SESSION_ID, lambda: context)
    second = OverrideStore(session_dir, SESSION_ID, lambda: context)
    first.set(ids[0], user="ana", text="From the first kernel.")
    assert second.current_values() == {ids[0]: {"text": "From the first kernel."}}
    [record] = second.set(ids[0], user="bob", text="From the second kernel.")
    assert (record.seq, record.previous_value) == (2, "From the first kernel.")
    assert first.log()["seq"].tolist() == [1, 2]


# -- index -----------------------------------------------------------------------------------


def reopen(session_dir: Path, context: EditContext) -> OverrideStore:
    return OverrideStore(session_dir, SESSION_ID, lambda: context)


def index_of(store: OverrideStore) -> dict:
    return json.loads(store.index_path.read_text(encoding="utf-8"))


def fill(store: OverrideStore, ids: list[str]) -> None:
    store.set(ids[0], user="ana", text="Indexed.")
    store.set(ids[1], user="ana", ic_ooc="MIXED", confidence_flag=True)
    store.undo_last_batch("ana")
    store.set(ids[2], user="bob", character_tag="Kestrel")


def test_index_reflects_the_log(store: OverrideStore, ids: list[str]) -> None:
    fill(store, ids)
    store.close()
    index = index_of(store)
    assert (index["seq"], index["log_size"], index["session_id"]) == (
        6,
        log_size(store),
        SESSION_ID,
    )
    current = [dict(zip(index["columns"], row, strict=True)) for row in index["current"]]
    assert {(r["segment_id"], r["field"]) for r in current} == {
        (ids[0], "text"),
        (ids[2], "character_tag"),
    }


def test_fresh_index_is_read_instead_of_the_log(
    store: OverrideStore,
    session_dir: Path,
    context: EditContext,
    ids: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill(store, ids)
    store.close()

    def refuse(*args: object) -> None:
        raise AssertionError("the log was parsed although the index is fresh")

    monkeypatch.setattr(overrides_module, "_parse_lines", refuse)
    reopened = reopen(session_dir, context)
    assert reopened.current_values() == store.current_values()
    assert reopened.seq == 6
    monkeypatch.undo()
    assert reopened.undo_last_batch("bob") is not None  # undo stacks come from the index too
    assert reopened.current_values() == {ids[0]: {"text": "Indexed."}}


@pytest.mark.parametrize("damage", ["missing", "corrupt", "stale", "foreign"])
def test_index_is_rebuilt(
    store: OverrideStore,
    session_dir: Path,
    context: EditContext,
    ids: list[str],
    damage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fill(store, ids)
    store.close()
    if damage == "missing":
        store.index_path.unlink()
    elif damage == "corrupt":
        store.index_path.write_text('{"format": 1, "seq": ', encoding="utf-8")
    elif damage == "stale":  # another kernel appended after the index was written
        reopen(session_dir, context).set(ids[3], user="cy", text="Appended later.")
    else:  # an index whose hash matches another log
        index = index_of(store) | {"log_sha256": "0" * 64}
        store.index_path.write_text(json.dumps(index), encoding="utf-8")

    with caplog.at_level(logging.INFO, logger="livereview.store.overrides"):
        reopened = reopen(session_dir, context)
    expected = store.current_values()  # picks up the stale case's extra record
    assert reopened.current_values() == expected
    assert index_of(reopened)["log_size"] == log_size(store)
    assert index_of(reopened)["seq"] == reopened.seq == len(store.log())
    if damage == "corrupt":
        assert "corrupt" in caplog.text


# -- crashes ---------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    import pandas as pd
    from livereview.store.overrides import EditContext, OverrideStore

    session_dir, mode, count, user = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    segments = pd.read_pickle(session_dir / "segments.pkl")
    context = EditContext(segments, set(segments["chunk_id"]), set(segments["speaker_id"]))
    store = OverrideStore(session_dir, "demo_session", lambda: context)
    ids = segments.index.tolist()
    while not (session_dir / "go").exists():
        time.sleep(0.01)

    def acknowledge(n):
        [record] = store.set(ids[n % len(ids)], user=user, text=f"{user} line {n}")
        print(record.override_id, flush=True)

    def torn_write(fd, data):
        os.write(fd, data[: len(data) // 2])
        os.fsync(fd)
        os.kill(os.getpid(), signal.SIGKILL)

    n = 0
    while mode == "loop" or n < count:
        acknowledge(n)
        n += 1
    if mode == "tear":
        store._write = torn_write
        acknowledge(n)
    """
)


def start_child(session_dir: Path, mode: str, count: int, user: str) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(session_dir), mode, str(count), user],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def full_context(segments: pd.DataFrame) -> EditContext:
    """What the children validate against: every chunk completed."""
    return EditContext(segments, set(segments["chunk_id"]), set(segments["speaker_id"]))


def test_killed_in_the_middle_of_an_append(
    session_dir: Path, segments: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    (session_dir / "go").touch()
    child = start_child(session_dir, "tear", 5, "ana")
    out, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, err
    acknowledged = out.split()
    assert len(acknowledged) == 5
    log_path = session_dir / "overrides" / "overrides.jsonl"
    assert not log_path.read_bytes().endswith(b"\n")

    with caplog.at_level(logging.WARNING, logger="livereview.store.overrides"):
        store = OverrideStore(session_dir, SESSION_ID, lambda: full_context(segments))
    assert "torn line" in caplog.text
    [torn] = (session_dir / "overrides").glob("torn-*.jsonl")
    assert torn.read_bytes().startswith(b'{"override_id":')
    assert log_path.read_bytes().endswith(b"\n")
    assert store.log()["override_id"].tolist() == acknowledged
    [record] = store.set(segments.index[0], user="ana", text="After the crash.")
    assert record.seq == 6


def test_killed_while_writing_in_a_loop(session_dir: Path, segments: pd.DataFrame) -> None:
    (session_dir / "go").touch()
    child = start_child(session_dir, "loop", 0, "ana")
    acknowledged = [child.stdout.readline().strip() for _ in range(30)]
    child.send_signal(signal.SIGKILL)
    out, _ = child.communicate(timeout=60)
    acknowledged += out.split()

    store = OverrideStore(session_dir, SESSION_ID, lambda: full_context(segments))
    logged = store.log()["override_id"].tolist()
    assert logged[: len(acknowledged)] == acknowledged
    assert len(logged) - len(acknowledged) <= 1  # on disk but killed before printing
    assert store.log()["seq"].tolist() == list(range(1, len(logged) + 1))


def test_unparsable_last_line_is_set_aside(
    store: OverrideStore, session_dir: Path, context: EditContext, ids: list[str]
) -> None:
    store.set(ids[0], user="ana", text="Good.")
    with store.log_path.open("ab") as log:
        log.write(b'{"override_id": "cut short\n')
    reopened = reopen(session_dir, context)
    assert len(reopened.log()) == 1
    assert len(list(store.directory.glob("torn-*.jsonl"))) == 1


def test_damage_before_the_last_line_is_an_error(
    store: OverrideStore, session_dir: Path, context: EditContext, ids: list[str]
) -> None:
    store.set(ids[0], user="ana", text="Good.")
    data = store.log_path.read_bytes()
    store.log_path.write_bytes(b"not json\n" + data)
    store.index_path.unlink(missing_ok=True)
    with pytest.raises(OverrideError, match="unparsable record"):
        reopen(session_dir, context)


def test_concurrent_writers_never_interleave_or_lose_lines(session_dir: Path, segments: pd.DataFrame) -> None:
    users = ["ana", "bob", "cy", "dee"]
    children = [start_child(session_dir, "count", 100, user) for user in users]
    time.sleep(0.5)
    (session_dir / "go").touch()
    acknowledged = []
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        acknowledged += out.split()

    lines = (session_dir / "overrides" / "overrides.jsonl").read_bytes().splitlines()
    records = [OverrideRecord.from_dict(json.loads(line)) for line in lines]
    assert [r.seq for r in records] == list(range(1, 401))
    assert sorted(r.override_id for r in records) == sorted(acknowledged)
    assert Counter(r.user for r in records) == dict.fromkeys(users, 100)
    store = OverrideStore(session_dir, SESSION_ID, lambda: full_context(segments))
    assert store.seq == 400
