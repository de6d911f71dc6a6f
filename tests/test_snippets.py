"""Audio snippets of the processed demo: clips and manifest from the merged view, re-exports, resume, errors."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from downstream_helpers import copy_session, decode, find_segment

import livereview
from livereview.cli import main
from livereview.review.snippets import GAP_SECONDS, JOURNAL, MANIFEST_COLUMNS, RecordingChangedError, _safe_name
from livereview.stages.audio import SpanReader

pytestmark = pytest.mark.slow


@pytest.fixture
def session(tmp_path: Path, demo_session: livereview.Session) -> livereview.Session:
    """A private copy of the processed demo, with its own copy of the recording."""
    copy = copy_session(demo_session, tmp_path, own_recording=True)
    yield copy
    copy.close()


def _text(value: object) -> str | None:
    """A manifest cell as text, None when empty (pandas reads None back as NaN)."""
    return value if isinstance(value, str) else None


def _correct(session: livereview.Session) -> dict[str, str]:
    """Corrections of text, character, IC/OOC and speaker on four segments; their ids by kind."""
    ids = {
        "tom": find_segment(session, "get for you tonight"),
        "inn": find_segment(session, "rain drums"),
        "pizza": find_segment(session, "pineapple"),
        "arrows": find_segment(session, "fires two arrows"),
    }
    session.set_override(ids["tom"], user="ana", text="What can old Tom get for you tonight?", character_tag="Tom")
    session.set_override(ids["inn"], user="ana", ic_ooc="IC", character_tag="DM")
    session.set_override(ids["pizza"], user="ana", ic_ooc="OOC")
    view = session.view()
    other = next(s for s in view["speaker_id"].dropna().unique() if s != view.loc[ids["arrows"], "speaker_id"])
    session.set_override(ids["arrows"], user="ana", speaker_id=other)
    return ids


def test_manifest_matches_the_merged_view_with_corrections(session: livereview.Session) -> None:
    ids = _correct(session)
    result = session.export_snippets(progress=False)
    view = session.view()
    manifest = result.manifest.set_index("clip_id")
    assert list(manifest.index) == list(view.index)  # one clip per segment, in time order
    seqs = session.overrides().groupby("segment_id")["seq"].max()
    whole, whole_rate, _ = decode(session.audio_path)  # the demo is short: decoded whole, independently
    for segment_id, row in view.iterrows():
        clip = manifest.loc[segment_id]
        assert clip["segment_ids"] == [segment_id] and clip["file"] == f"{segment_id}.flac"
        assert clip["start"] == round(row["start"], 3) and clip["end"] == round(row["end"], 3)
        assert clip["text"] == " ".join(row["text"].split())
        assert clip["speaker"] == row["speaker_id"] and clip["ic_ooc"] == row["ic_ooc"]
        tag = row["character_tag"] if isinstance(row["character_tag"], str) else ""
        assert _text(clip["character"]) == (tag or None)
        assert clip["override_seq"] == int(seqs.get(segment_id, 0))
        samples, rate, tags = decode(result.directory / clip["file"])
        assert rate == whole_rate  # the recording's own rate, not the pipeline's 16 kHz
        expected = whole[:, round(clip["start"] * rate) : round(clip["end"] * rate)]
        assert samples.shape == expected.shape
        np.testing.assert_allclose(samples, expected, atol=1 / 32768 + 1e-6)  # 16-bit FLAC
        assert tags["title"] == clip["text"] and tags["track"] == segment_id
    tom = manifest.loc[ids["tom"]]
    assert tom["text"] == "What can old Tom get for you tonight?" and tom["character"] == "Tom"
    assert tom["override_seq"] > 0 and manifest.loc[ids["pizza"], "ic_ooc"] == "OOC"
    for clip in manifest.itertuples():
        digest = hashlib.sha256((result.directory / clip.file).read_bytes()).hexdigest()
        assert clip.sha256 == digest
    with (result.directory / "manifest.csv").open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == list(MANIFEST_COLUMNS)
    assert [r["clip_id"] for r in rows] == list(manifest.index)
    assert rows[0]["segment_ids"] == manifest.index[0] and rows[0]["text"] == manifest.iloc[0]["text"]
    lines = (result.directory / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["clip_id"] for line in lines] == list(manifest.index)
    assert not (result.directory / JOURNAL).exists()


def test_export_again_is_byte_identical_and_writes_nothing(session: livereview.Session, tmp_path: Path) -> None:
    first = session.export_snippets(selection="ic", progress=False)
    before = {p.name: p.read_bytes() for p in first.directory.iterdir()}
    again = session.export_snippets(selection="ic", progress=False)
    assert again.written == [] and again.removed == [] and len(again.kept) == len(first.written)
    assert {p.name: p.read_bytes() for p in again.directory.iterdir()} == before
    fresh = session.export_snippets(selection="ic", out=tmp_path / "fresh", progress=False)
    assert {p.name: p.read_bytes() for p in fresh.directory.iterdir()} == before
    assert set(first.manifest["ic_ooc"]) <= {"IC", "MIXED"}


def test_a_correction_rewrites_only_its_clip(session: livereview.Session) -> None:
    first = session.export_snippets(progress=False)
    changed = find_segment(session, "rusty blades")
    stamps = {p.name: p.stat().st_mtime_ns for p in first.directory.glob("*.flac")}
    session.set_override(changed, user="ana", text="Four goblins leap up from behind the rubble.")
    second = session.export_snippets(progress=False)
    assert second.written == [f"{changed}.flac"] and second.removed == []
    assert len(second.kept) == len(first.written) - 1
    for path in second.directory.glob("*.flac"):
        assert (path.stat().st_mtime_ns == stamps[path.name]) == (path.name != f"{changed}.flac")
    row = second.manifest.set_index("clip_id").loc[changed]
    assert row["text"] == "Four goblins leap up from behind the rubble." and row["override_seq"] == session.override_seq
    assert decode(second.directory / f"{changed}.flac")[2]["title"] == row["text"]


def test_clips_no_longer_selected_are_removed(session: livereview.Session) -> None:
    first = session.export_snippets(selection="ic", progress=False)
    dropped = first.manifest["clip_id"].iloc[0]
    session.set_override(dropped, user="ana", ic_ooc="OOC")
    second = session.export_snippets(selection="ic", progress=False)
    assert second.removed == [f"{dropped}.flac"] and second.written == []
    assert not (second.directory / f"{dropped}.flac").exists()
    assert dropped not in set(second.manifest["clip_id"])
    assert sorted(p.name for p in second.directory.glob("*.flac")) == sorted(second.manifest["file"])


SLOW_EXPORT = """
import sys, time
import livereview
from livereview.review import snippets
encode = snippets._encode
def slow(*args, **kwargs):
    time.sleep(0.15)
    return encode(*args, **kwargs)
snippets._encode = slow
session = livereview.open_session(sys.argv[1])
session.export_snippets(out=sys.argv[2], progress=False)
"""


def test_an_interrupted_export_resumes(session: livereview.Session, tmp_path: Path) -> None:
    out = tmp_path / "clips"
    script = tmp_path / "slow_export.py"
    script.write_text(SLOW_EXPORT, encoding="utf-8")
    process = subprocess.Popen([sys.executable, str(script), str(session.directory), str(out)])
    journal = out / JOURNAL
    deadline = time.monotonic() + 120
    while not (journal.exists() and len(journal.read_text(encoding="utf-8").splitlines()) >= 5):
        assert process.poll() is None and time.monotonic() < deadline, "the export ended before it was killed"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = len(journal.read_text(encoding="utf-8").splitlines())
    assert not (out / "manifest.jsonl").exists()
    resumed = session.export_snippets(out=out, progress=False)
    assert len(resumed.kept) >= done >= 5 and len(resumed.written) == len(resumed.manifest) - len(resumed.kept)
    assert not list(out.glob(".*.part")) and not journal.exists()
    whole = session.export_snippets(out=tmp_path / "whole", progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {
        p.name: p.read_bytes() for p in whole.directory.iterdir()
    }


def test_missing_or_changed_recording_is_refused(session: livereview.Session, demo_session, sample) -> None:
    out = session.directory / "snippets" / "segment-all"
    recording = session.audio_path
    recording.unlink()
    with pytest.raises(FileNotFoundError, match=r"recording of session .* is missing"):
        session.export_snippets(progress=False)
    assert not out.exists()
    recording.write_bytes(Path(sample["audio"]).read_bytes())
    with pytest.raises(RecordingChangedError, match="changed since session"):
        session.export_snippets(progress=False)
    assert not out.exists()
    result = session.export_snippets(progress=False, recording=demo_session.audio_path)  # the original, moved
    assert len(result.manifest) == len(session.view())


def test_clips_by_speaker_and_scene_join_segments_with_gaps(session: livereview.Session) -> None:
    view = session.view()
    by_speaker = session.export_snippets(by="speaker", format="ogg", progress=False)
    assert sorted(by_speaker.manifest["speaker"]) == sorted(view["speaker_id"].dropna().unique())
    for clip in by_speaker.manifest.itertuples():
        members = view.loc[clip.segment_ids]
        assert (members["speaker_id"] == clip.speaker).all() and list(members.index) == clip.segment_ids
        samples, rate, _ = decode(by_speaker.directory / clip.file)
        expected = (members["end"] - members["start"]).sum() + GAP_SECONDS * (len(members) - 1)
        assert rate == 48_000 and abs(samples.shape[1] / rate - expected) < 0.05
    scenes = session.scenes()
    by_scene = session.export_snippets(by="scene", format="wav", progress=False, archive=True)
    assert list(by_scene.manifest["clip_id"]) == list(scenes["scene_id"])
    assert [tuple(ids) for ids in by_scene.manifest["segment_ids"]] == list(scenes["segment_ids"])
    with zipfile.ZipFile(by_scene.archive) as bundle:
        names = bundle.namelist()
    folder = by_scene.directory.name
    assert names == [
        f"{folder}/manifest.jsonl",
        f"{folder}/manifest.csv",
        *(f"{folder}/{f}" for f in sorted(by_scene.manifest["file"])),
    ]


def test_span_reader_decodes_spans_in_any_order(session: livereview.Session) -> None:
    whole, rate, _ = decode(session.audio_path)
    spans = [(1.0, 2.5), (2.0, 3.0), (100.0, 101.0), (5.0, 6.0), (170.0, 175.0), (0.0, 0.01)]
    with SpanReader(session.audio_path, seek_gap=10.0) as reader:
        assert (reader.sample_rate, reader.channels) == (rate, whole.shape[0])
        for start, end in spans:  # forward, overlapping, a long jump, back again, past the end
            np.testing.assert_array_equal(reader.read(start, end), whole[:, round(start * rate) : round(end * rate)])
        with pytest.raises(ValueError, match="start must come before end"):
            reader.read(3.0, 3.0)


def test_file_names_are_safe_everywhere() -> None:
    assert _safe_name("Dana the DM") == "dana-the-dm"
    assert _safe_name("Zoë / Ångström: ?*") == "zoe-angstrom"
    assert _safe_name("Дана") == "unnamed"  # nothing transliterable: the speaker clip adds a hash of the name
    assert _safe_name("CON") == "_con" and _safe_name("lpt1.txt") == "_lpt1.txt"
    assert _safe_name("...") == "unnamed" and len(_safe_name("x" * 300)) == 80


def test_snippets_command(session: livereview.Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli-clips"
    code = main(["snippets", str(session.directory), "--select", "ooc", "-o", str(out), "--zip", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert f"{len(manifest)} clips in {out}" in printed and out.with_suffix(".zip").is_file()
    assert {row["ic_ooc"] for row in manifest} <= {"OOC", "MIXED"}
    session.audio_path.unlink()
    assert main(["snippets", str(session.directory), "-o", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "is missing" in error[0]
