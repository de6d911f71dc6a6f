"""The bundled demo recording: its files agree with each other, with the script and with the audio."""

from __future__ import annotations

import itertools
import shutil
import sys
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import yaml

from livereview import demo
from livereview.core.segments import IC, IC_OOC_LABELS, MIXED, OOC, SEGMENT_TYPES

IN_CHARACTER_TYPES = {"DM_NARRATION", "NPC_DIALOGUE", "CHARACTER_SPEECH", "CHARACTER_ACTION"}


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return demo.demo_reference()


@pytest.fixture(scope="module")
def party() -> dict:
    return yaml.safe_load(demo.demo_party_path().read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def audio() -> tuple[np.ndarray, int]:
    """The demo recording decoded with PyAV: mono samples and their rate."""
    with av.open(str(demo.demo_audio_path())) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "flac"
        assert stream.channels == 1
        frames = [frame.to_ndarray() for frame in container.decode(stream)]
        rate = stream.sample_rate
    samples = np.concatenate([frame.reshape(-1) for frame in frames]).astype(np.float64)
    return samples / 32768.0, rate


def _rttm_turns(path: Path) -> list[tuple[float, float, str]]:
    turns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        assert fields[:3] == ["SPEAKER", demo.DEMO_SESSION_ID, "1"]
        assert fields[5:7] == ["<NA>", "<NA>"] and fields[8:] == ["<NA>", "<NA>"]
        turns.append((float(fields[3]), float(fields[4]), fields[7]))
    return turns


def test_reference_follows_the_script(reference: pd.DataFrame) -> None:
    assert list(reference.columns) == list(demo.REFERENCE_COLUMNS)
    script = pd.DataFrame(
        [(t.speaker, t.text, t.ic_ooc, t.segment_type, t.character_tag) for t in demo.SCRIPT],
        columns=["speaker", "text", "ic_ooc", "segment_type", "character_tag"],
    )
    pd.testing.assert_frame_equal(reference[script.columns], script)


def test_labels_are_valid_and_consistent(reference: pd.DataFrame) -> None:
    characters = {p.name: p.character for p in demo.PLAYERS}
    npcs = {npc.name for npc in demo.NPCS}
    for turn in reference.itertuples():
        assert turn.ic_ooc in IC_OOC_LABELS and turn.segment_type in SEGMENT_TYPES, turn
        assert 3 <= len(turn.text.split()) <= 20 and not any(c.isdigit() for c in turn.text), turn
        if turn.ic_ooc == OOC:
            assert turn.segment_type not in IN_CHARACTER_TYPES and turn.character_tag == "", turn
        elif turn.segment_type == "NPC_DIALOGUE":
            assert turn.speaker == demo.GM.name and turn.character_tag in npcs, turn
        elif turn.segment_type == "DM_NARRATION":
            assert turn.speaker == demo.GM.name and turn.character_tag == "DM", turn
        else:
            assert turn.segment_type in IN_CHARACTER_TYPES, turn
            assert turn.character_tag == characters[turn.speaker], turn


def test_both_classes_are_well_represented(reference: pd.DataFrame) -> None:
    counts = reference["ic_ooc"].value_counts()
    assert counts[IC] >= 15 and counts[OOC] >= 15 and counts[MIXED] >= 1
    assert set(reference["segment_type"]) == set(SEGMENT_TYPES)


def test_four_distinct_speakers_match_the_party(reference: pd.DataFrame, party: dict) -> None:
    speakers = set(reference["speaker"])
    assert len(speakers) == 4
    assert party["game_master"] in speakers and party["party"]
    players = {c["player"] for c in party["characters"]}
    assert len(party["characters"]) == 3 and players == speakers - {party["game_master"]}
    for character in party["characters"]:
        assert character["name"] and isinstance(character["aliases"], list)
        own_tags = set(reference.loc[reference["speaker"] == character["player"], "character_tag"])
        assert own_tags == {"", character["name"]}


def test_turns_are_ordered_and_timed(reference: pd.DataFrame) -> None:
    assert reference["start"].iloc[0] == demo.LEAD_IN_S
    assert (reference["end"] > reference["start"]).all()
    gaps = (reference["start"].iloc[1:].to_numpy() - reference["end"].iloc[:-1].to_numpy()).round(3)
    pauses = np.array([turn.pause_after for turn in demo.SCRIPT[:-1]])
    np.testing.assert_allclose(gaps, pauses, atol=0.0015)
    assert (gaps > 0).all() and (gaps <= 0.15).sum() >= 1 and (gaps >= 2).sum() >= 3


def test_rttm_and_stm_match_the_reference(reference: pd.DataFrame) -> None:
    rttm = _rttm_turns(demo.demo_rttm_path())
    assert [speaker for _, _, speaker in rttm] == list(reference["speaker"])
    np.testing.assert_allclose([start for start, _, _ in rttm], reference["start"], atol=5e-4)
    np.testing.assert_allclose([start + dur for start, dur, _ in rttm], reference["end"], atol=1e-3)
    stm = [line.split(maxsplit=5) for line in demo.demo_stm_path().read_text(encoding="utf-8").splitlines()]
    assert [(f[0], f[1], f[2], float(f[3]), float(f[4]), f[5]) for f in stm] == [
        (demo.DEMO_SESSION_ID, "1", t.speaker, t.start, t.end, t.text) for t in reference.itertuples()
    ]


def test_audio_length_and_speech_match_the_reference(reference: pd.DataFrame, audio: tuple[np.ndarray, int]) -> None:
    samples, rate = audio
    assert rate == demo.SAMPLE_RATE
    duration = len(samples) / rate
    assert abs(duration - (reference["end"].iloc[-1] + demo.SCRIPT[-1].pause_after)) < 0.1
    assert 150 <= duration <= 180

    def rms(start: float, end: float) -> float:
        return float(np.sqrt(np.mean(samples[round(start * rate) : round(end * rate)] ** 2)))

    # every turn is speech; the pauses between turns hold only the quiet background noise
    assert min(rms(t.start, t.end) for t in reference.itertuples()) > 0.01
    for before, after in itertools.pairwise(reference.itertuples()):
        if after.start - before.end >= 0.3:
            assert 0 < rms(before.end + 0.05, after.start - 0.05) < 0.002


def test_bundled_files_are_small_and_documented() -> None:
    files = sorted(demo.DEMO_DIR.iterdir())
    assert sum(f.stat().st_size for f in files) < 4_000_000
    readme = (demo.DEMO_DIR / "README.md").read_text(encoding="utf-8")
    for person in demo.PEOPLE:
        assert person.name in readme and f"`{person.voice.espeak}`" in readme


def test_scenes_cover_the_script_in_order(reference: pd.DataFrame) -> None:
    scenes = demo.demo_scenes()
    assert list(scenes["scene"]) == [scene.name for scene in demo.SCENES]
    assert scenes["first_turn"].iloc[0] == 0 and scenes["last_turn"].iloc[-1] == len(reference) - 1
    assert (scenes["first_turn"].iloc[1:].to_numpy() == scenes["last_turn"].iloc[:-1].to_numpy() + 1).all()
    assert list(scenes["start"]) == list(reference["start"].iloc[scenes["first_turn"]])
    # each scene opens where the script says it does
    openings = dict(zip(scenes["scene"], reference["text"].iloc[scenes["first_turn"]], strict=True))
    assert "Crooked Lantern" in openings["the inn"] and "climb the hill" in openings["the climb to the tower"]
    assert "goblins leap up" in openings["the goblin fight"] and "pizza" in openings["the pizza break"]
    assert "boy" in openings["the cellar"]
    breaks = scenes[scenes["kind"] == "break"]
    turns = [turn for row in breaks.itertuples() for turn in range(row.first_turn, row.last_turn + 1)]
    assert (reference["ic_ooc"].iloc[turns] == "OOC").all()


def test_pyannote_sample_is_found_without_importing_it() -> None:
    imported = "pyannote.audio" in sys.modules
    try:
        paths = demo.pyannote_sample_paths()
    except FileNotFoundError as error:
        assert "pip install pyannote.audio" in str(error)
        pytest.skip("pyannote.audio is not installed")
    assert {name: path.name for name, path in paths.items()} == {
        "audio": "sample.wav",
        "rttm": "sample.rttm",
        "stm": "sample.stm",
    }
    assert all(path.is_file() for path in paths.values())
    assert ("pyannote.audio" in sys.modules) == imported


@pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")), reason="espeak-ng and sox rebuild the demo"
)
def test_build_reproduces_the_bundled_references(tmp_path: Path) -> None:
    demo.build_demo(tmp_path)
    references = ("demo_session.jsonl", "demo_session.rttm", "demo_session.stm", "demo_session.scenes.jsonl")
    for name in (*references, "party.yaml"):
        assert (tmp_path / name).read_bytes() == (demo.DEMO_DIR / name).read_bytes(), name
    assert (tmp_path / "demo_session.flac").stat().st_size > 0


def test_build_names_a_missing_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="espeak-ng"):
        demo.build_demo(tmp_path / "out")
