"""Sessions reopen anywhere: the party file travels with the session, a moved recording is found again."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import livereview
from livereview.demo import demo_party_path, pyannote_sample_paths

SAMPLE = pyannote_sample_paths()["audio"]
LEGACY = Path(__file__).parent / "data" / "legacy-session" / "session"

_OPEN_ELSEWHERE = """
import json, sys
import livereview
session = livereview.open_session(sys.argv[1])
party = session.party
print(json.dumps({"game_master": party.game_master if party else None, "audio": str(session.audio_path),
                  "status": session.status, "rows": len(session.view())}))
"""


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """A working folder holding a recording and a party file."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(SAMPLE, work / "table.wav")
    shutil.copy(demo_party_path(), work / "party.yaml")
    return work


def create_from(work: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> livereview.Session:
    """A session created from ``work`` with the recording and party file given by relative paths."""
    monkeypatch.chdir(work)
    session = livereview.Session.create("table.wav", out_dir=out, options=livereview.RunOptions(party="party.yaml"))
    session.close()
    return session


def test_a_session_records_its_recording_and_keeps_a_copy_of_its_party(
    recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = create_from(recorded, tmp_path / "out", monkeypatch)
    metadata = json.loads((session.directory / "metadata.json").read_text())
    assert metadata["audio"]["path"] == str((recorded / "table.wav").resolve())
    assert metadata["audio"]["relative_path"] == "../../work/table.wav"
    assert (session.directory / "party.yaml").read_bytes() == demo_party_path().read_bytes()
    assert metadata["party"]["file"] == "party.yaml" and len(metadata["party"]["sha256"]) == 64


def test_a_session_opened_from_another_folder_has_its_party_and_recording(
    recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = create_from(recorded, tmp_path / "out", monkeypatch)
    (recorded / "party.yaml").unlink()  # the original party file is gone: the session has its own copy
    result = subprocess.run(
        [sys.executable, "-c", _OPEN_ELSEWHERE, str(session.directory)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    opened = json.loads(result.stdout)
    audio = str((recorded / "table.wav").resolve())
    assert opened == {"game_master": "Dana", "audio": audio, "status": "created", "rows": 0}
    assert "WARNING" not in result.stderr


def test_a_moved_recording_is_found_by_its_hash_or_given(
    recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    session = create_from(recorded, tmp_path / "out", monkeypatch)
    moved = tmp_path / "elsewhere" / "table.wav"
    moved.parent.mkdir()
    (recorded / "table.wav").rename(moved)
    with caplog.at_level(logging.WARNING, logger="livereview.review.locate"):
        lost = livereview.open_session(session.directory)
    assert "is not there any more" in caplog.text and "open_session(" in caplog.text
    lost.close()
    found = livereview.open_session(session.directory, audio=moved)
    assert found.audio_path == moved.resolve()
    found.close()
    with pytest.raises(ValueError, match="is not the recording of session 'table'"):
        livereview.open_session(session.directory, audio=demo_party_path().with_name("demo_session.flac"))
    # Put next to the session directory, it is found without being given.
    shutil.move(moved, session.directory.parent / "table.wav")
    nearby = livereview.open_session(session.directory)
    assert nearby.audio_path == (session.directory.parent / "table.wav").resolve()
    nearby.close()


def test_a_session_written_before_the_records_opens_with_one_warning_naming_the_fix(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "legacy"
    shutil.copytree(LEGACY, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    metadata["config"]["party"] = "livereview/data/demo/party.yaml"  # relative to where it was run
    (copy / "metadata.json").write_text(json.dumps(metadata))
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="livereview.review.locate"):
        session = livereview.open_session(copy)
        assert session.party is None and session.party is None  # looked for once
        assert session.status == "complete" and len(session.view()) == 15
    warnings = [r for r in caplog.records if "party file livereview/data/demo/party.yaml" in r.getMessage()]
    assert len(warnings) == 1 and "Copy it into" in warnings[0].getMessage()
    session.close()
    shutil.copy(demo_party_path(), copy / "party.yaml")  # the fix the warning names
    fixed = livereview.open_session(copy)
    assert fixed.party is not None and fixed.party.game_master == "Dana"
    fixed.close()
