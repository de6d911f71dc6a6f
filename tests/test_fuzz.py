"""Property-based fuzzing of every input livereview reads: a clear error or a correct result, never a crash.

Random bytes as recordings, random YAML as party files, random JSON lines as
transcripts and override logs, and random HTTP bodies to the live server. Each case
must end in the documented error type with a message, or in a correct result; the
session directory never changes for a refused input. The number of cases each
property ran is printed (run with ``-s`` to see it).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from audio_files import FORMATS, demo_excerpt, write_audio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live_helpers import make_session

import livereview
from livereview.cli.classify import read_transcript
from livereview.core.options import RunOptions
from livereview.core.party import Party, load_party
from livereview.demo import pyannote_sample_paths
from livereview.review.checks import InputError, plan_run
from livereview.stages.audio import iter_audio
from livereview.store.overrides import OverrideError

SAMPLE = pyannote_sample_paths()["audio"]
CASES: Counter[str] = Counter()
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: Real headers to start random bytes with, so the fuzzing reaches the decoders, not only format probing.
HEADERS = [
    b"",
    b"RIFF\x24\x08\x00\x00WAVEfmt ",
    b"fLaC\x00\x00\x00\x22",
    b"OggS\x00\x02",
    b"\x1a\x45\xdf\xa3",
    b"ID3\x04",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    print("\nfuzz cases run:", dict(CASES))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def real_recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Two seconds of the demo in each format, to mutate."""
    folder = tmp_path_factory.mktemp("real")
    excerpt = demo_excerpt(2.0)
    return {suffix: write_audio(folder / f"real{suffix}", excerpt).read_bytes() for suffix in FORMATS}


def mutated(data: bytes, flips: list[tuple[int, int]], keep: float) -> bytes:
    """``data`` with bytes overwritten at (position, value) pairs, then cut to ``keep`` of its length."""
    damaged = bytearray(data)
    for position, value in flips:
        damaged[position % len(damaged)] = value
    return bytes(damaged[: max(1, int(len(damaged) * keep))])


@FUZZ
@given(header=st.sampled_from(HEADERS), body=st.binary(max_size=4096))
def test_random_bytes_as_a_recording(tmp_path_factory: pytest.TempPathFactory, header: bytes, body: bytes) -> None:
    check_recording(tmp_path_factory, header + body, ".bin")


@FUZZ
@given(
    suffix=st.sampled_from(sorted(FORMATS)),
    flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=12),
    keep=st.floats(0.05, 1.0),
)
def test_damaged_real_recordings(
    tmp_path_factory: pytest.TempPathFactory,
    real_recordings: dict[str, bytes],
    suffix: str,
    flips: list[tuple[int, int]],
    keep: float,
) -> None:
    check_recording(tmp_path_factory, mutated(real_recordings[suffix], flips, keep), suffix)


@pytest.mark.parametrize("channels", [9, 65])
def test_a_wav_header_claiming_channels_no_layout_has_is_decoded_or_refused(
    tmp_path_factory: pytest.TempPathFactory, real_recordings: dict[str, bytes], channels: int
) -> None:
    """Found by the fuzzing above: byte 22 of a WAV header is its channel count."""
    check_recording(tmp_path_factory, mutated(real_recordings[".wav"], [(22, channels)], 1.0), ".wav")


def check_recording(tmp_path_factory: pytest.TempPathFactory, data: bytes, suffix: str) -> None:
    """A recording is refused before any work with clear problems, or decodes with its damage reported."""
    folder = tmp_path_factory.mktemp("audio")
    path = folder / f"recording{suffix}"
    path.write_bytes(data)
    CASES["recordings"] += 1
    try:
        plan = plan_run(path, out_dir=folder / "out", options=RunOptions())
    except InputError as error:
        assert error.problems and all(problem.strip() for problem in error.problems)
        assert not (folder / "out").exists()
        return
    CASES["recordings that decode"] += 1
    found = []
    samples = [block for block in iter_audio(plan.info.path, on_damage=found.append)]
    assert all(np.isfinite(block).all() for block in samples)
    assert all(damage.message and damage.time >= 0 for damage in found)
    CASES["recordings with damage reported"] += bool(found)


party_documents = st.one_of(
    st.text(max_size=200),
    json_values.map(lambda value: yaml.safe_dump(value)),
    st.fixed_dictionaries(
        {"game_master": st.text(max_size=10)},
        optional={
            "party": json_values,
            "characters": st.lists(
                st.dictionaries(st.sampled_from(["name", "player", "aliases", "role"]), json_values, max_size=4),
                max_size=4,
            ),
        },
    ).map(yaml.safe_dump),
)


@FUZZ
@given(document=party_documents)
def test_random_yaml_as_a_party_file(tmp_path_factory: pytest.TempPathFactory, document: str) -> None:
    path = tmp_path_factory.mktemp("party") / "party.yaml"
    path.write_text(document, encoding="utf-8")
    CASES["party files"] += 1
    try:
        party = load_party(path)
    except ValueError as error:
        assert str(path) in str(error)  # the message names the file
        return
    CASES["valid party files"] += 1
    assert isinstance(party, Party) and party.game_master.strip()


@FUZZ
@given(lines=st.lists(json_values.map(json.dumps) | st.text(max_size=40).filter(lambda s: "\n" not in s), max_size=8))
def test_random_json_lines_as_a_transcript(tmp_path_factory: pytest.TempPathFactory, lines: list[str]) -> None:
    path = tmp_path_factory.mktemp("transcript") / "transcript.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    CASES["transcripts"] += 1
    try:
        records = read_transcript(path)
    except ValueError as error:
        assert str(path) in str(error) and " line " in str(error)
        return
    assert all(isinstance(r["text"], str) and isinstance(r["speaker"], str) for r in records)


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    session = make_session(SAMPLE, tmp_path_factory.mktemp("session"))
    session.set_override("c00000-s001", user="ana", text="a real correction")
    session.close()
    return session.directory


@FUZZ
@given(lines=st.lists(json_values.map(json.dumps), min_size=1, max_size=5), torn=st.booleans())
def test_random_json_lines_in_an_override_log(
    session_dir: Path, tmp_path_factory: pytest.TempPathFactory, lines: list[str], torn: bool
) -> None:
    copy = tmp_path_factory.mktemp("fuzzed") / "session"
    shutil.copytree(session_dir, copy)
    log = copy / "overrides" / "overrides.jsonl"
    (copy / "overrides" / "overrides_index.json").unlink()
    with log.open("a", encoding="utf-8") as stream:
        stream.write("".join(line + "\n" for line in lines))
        if torn:
            stream.write('{"override_id": "cut sh')
    before = snapshot(copy)
    CASES["override logs"] += 1
    try:
        session = livereview.open_session(copy)
    except OverrideError as error:
        assert str(log) in str(error) or "override" in str(error)
        assert snapshot(copy) == before  # refused: nothing changed
        return
    try:
        CASES["override logs that open"] += 1
        assert session.corrected_values()["c00000-s001"] == {"text": "a real correction"}
        assert len(session.view()) == 6
    finally:
        session.close()


@pytest.fixture(scope="module")
def server(session_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    copy = tmp_path_factory.mktemp("served") / "session"
    shutil.copytree(session_dir, copy)
    handle = livereview.serve(copy, port=0, watch_interval=0)
    yield handle, copy
    handle.stop()


bodies = st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()))
valid_bodies = st.fixed_dictionaries(
    {
        "segment_id": st.sampled_from(["c00000-s001", "c00000-s002"]),
        "fields": st.fixed_dictionaries({"text": st.text(min_size=1, max_size=30)}),
        "user": st.sampled_from(["fuzz", "ana"]),
    }
).map(lambda v: json.dumps(v).encode())
field_bodies = st.fixed_dictionaries(
    {"segment_id": st.sampled_from(["c00000-s001", "c09999-s000", ""]) | st.text(max_size=12)},
    optional={
        "fields": st.dictionaries(
            st.sampled_from(["text", "ic_ooc", "speaker_id", "confidence_flag", "color"]), json_values, max_size=3
        ),
        "user": json_values,
        "rows": json_values,
        "confirm": json_values,
    },
).map(lambda v: json.dumps(v).encode())


@FUZZ
@given(path=st.sampled_from(["/overrides", "/overrides/undo"]), body=bodies | field_bodies | valid_bodies)
def test_random_http_bodies_to_the_live_server(server, path: str, body: bytes) -> None:
    handle, directory = server
    before = snapshot(directory / "overrides")
    response = httpx.post(handle.url + path, content=body, timeout=30)
    CASES[f"HTTP bodies to {path}"] += 1
    assert response.status_code != 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    if response.status_code >= 400:
        assert response.status_code in (400, 401, 403, 422)
        assert response.json()["error"]
        assert snapshot(directory / "overrides") == before  # a refused request changes nothing
    else:
        CASES[f"HTTP bodies accepted by {path}"] += 1
        assert response.json()["batch_id"] is None or snapshot(directory / "overrides") != before
