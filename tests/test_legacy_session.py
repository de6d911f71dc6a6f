"""A session directory written by an earlier release opens, reads and exports the same.

``tests/data/legacy-session/session`` was produced by a real run on pyannote's sample
recording (one rerun, corrections and an undo, a speaker mapping); ``expected/`` holds
what that release read back from it. Opening it must change nothing on disk. Exports are
byte for byte the same, except RTTM, which is now written from the speaker turns (every
speaker line that release wrote keeps its speaker), and JSON, which adds each word's speaker
and each segment's other speakers and speaker lines to what that release wrote.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import livereview

FIXTURE = Path(__file__).parent / "data" / "legacy-session"
FORMATS = ("txt", "srt", "vtt", "json", "rttm")
SELECTIONS = ("all", "ic", "ooc")


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    copy = tmp_path / "legacy-sample"
    shutil.copytree(FIXTURE / "session", copy)
    return copy


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _expected_frame(name: str) -> pd.DataFrame:
    return pd.read_json(FIXTURE / "expected" / name, orient="records")


def test_a_legacy_session_opens_unchanged_with_its_results(legacy: Path) -> None:
    before = _snapshot(legacy)
    session = livereview.open_session(legacy)
    try:
        assert (session.session_id, session.status) == ("legacy-sample", "complete")
        assert session.speaker_map == {"SPEAKER_00": "Alex", "SPEAKER_01": "Dana"}
        view = session.view(show_base=True).drop(columns=["words"])
        expected = _expected_frame("view.json")
        assert list(view["segment_id"]) == list(expected["segment_id"])
        for column in ("start", "end", "text", "speaker_id", "ic_ooc", "character_tag", "confidence_flag"):
            assert view[column].tolist() == expected[column].tolist(), column
        assert [list(v) for v in view["overridden"]] == expected["overridden"].tolist()
        history = session.rerun_history()
        assert history["rerun_id"].tolist() == _expected_frame("reruns.json")["rerun_id"].tolist() == ["r0001"]
        assert session.rerun("r0001").changed_ids == session.rerun("r0001").segment_ids
        overrides = session.overrides()
        expected_overrides = _expected_frame("overrides.json")
        assert overrides[["segment_id", "field", "user"]].values.tolist() == (
            expected_overrides[["segment_id", "field", "user"]].values.tolist()
        )
        turns = session.diarization(corrected=False)
        assert turns.round(3).values.tolist() == _expected_frame("diarization.json").round(3).values.tolist()
    finally:
        session.close()
    after = _snapshot(legacy)
    after.pop("overrides/overrides.jsonl.lock", None)
    after.pop("reruns/.lock", None)
    assert after == before


@pytest.mark.parametrize("selection", SELECTIONS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_legacy_session_exports_byte_for_byte(legacy: Path, fmt: str, selection: str) -> None:
    session = livereview.open_session(legacy)
    try:
        text = session.export_text(fmt, selection=selection)
    finally:
        session.close()
    expected = (FIXTURE / "expected" / f"export-{selection}.{fmt}").read_text(encoding="utf-8")
    if fmt == "rttm":  # now written from the speaker turns: every segment line of before keeps its speaker
        exported, before = (_rttm_lines(content) for content in (text, expected))
        assert {speaker for *_, speaker in exported} == {speaker for *_, speaker in before}
        for start, end, speaker in before:
            heard = [(a, b) for a, b, who in exported if who == speaker and a < end and b > start]
            assert heard, f"{speaker} at {start:.2f}-{end:.2f} s is missing from the RTTM"
    elif fmt == "json":  # the recording's path is where the session was made, not where it is read
        document, reference = json.loads(text), json.loads(expected)
        for metadata in (document["metadata"], reference["metadata"]):
            metadata.pop("audio_path")
        # what this release adds: each word's speaker, the other speakers heard, the speaker lines
        for segment in document["segments"]:
            assert isinstance(segment.pop("other_speakers"), list)
            segment.pop("lines", None)
            for word in segment["words"]:
                assert word.pop("speaker_id")
        assert document == reference
    else:
        assert text == expected


def _rttm_lines(text: str) -> list[tuple[float, float, str]]:
    """(start, end, speaker) of each SPEAKER line."""
    fields = [line.split() for line in text.splitlines() if line.startswith("SPEAKER")]
    return [(float(f[3]), float(f[3]) + float(f[4]), f[7]) for f in fields]
