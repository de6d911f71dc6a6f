"""The bundled demo recording: a short synthetic tabletop session with its references.

The demo is a game master and three players at a fantasy one-shot: narration, NPC
voices, players speaking and acting as their characters, and table talk about dice,
rules, pizza and phones. Every person is voiced by ``espeak-ng`` with a voice of
their own; ``sox`` shapes each clip and encodes the mix. The reference files
(speaker turns, transcript and IC/OOC labels) come from the same :data:`SCRIPT`, with
times measured on the synthesized clips, so they agree with the audio by
construction.

Regenerate the files with::

    python -m livereview.demo build [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from livereview.segments import IC, MIXED, OOC

#: Folder of the bundled demo files.
DEMO_DIR = Path(__file__).resolve().parent / "data" / "demo"

#: Session id of the demo: the stem of its files and the URI in RTTM and STM.
DEMO_SESSION_ID = "demo_session"

#: Sample rate of the bundled audio (espeak-ng's own rate).
SAMPLE_RATE = 22050

#: Columns of :func:`demo_reference`, in order.
REFERENCE_COLUMNS = ("start", "end", "speaker", "text", "ic_ooc", "segment_type", "character_tag")

#: Silence before the first turn, in seconds.
LEAD_IN_S = 1.0

#: Seed and RMS level (dBFS) of the steady background noise under the whole recording.
NOISE_SEED = 1729
NOISE_RMS_DBFS = -68.0

#: Band limit (Hz) of every clip: what the 16 kHz pipeline keeps, and a smaller file.
BAND_LIMIT_HZ = 7600

#: Level (dBFS) below a clip's peak under which its leading and trailing samples count
#: as silence, and the margin (seconds) kept around the speech when trimming.
TRIM_THRESHOLD_DB = -40.0
TRIM_MARGIN_S = 0.02


@dataclass(frozen=True)
class Voice:
    """How ``espeak-ng`` and ``sox`` render one voice.

    Attributes
    ----------
    espeak : str
        ``espeak-ng -v`` argument: a language voice, optionally ``+variant``.
    pitch : int
        ``espeak-ng -p`` base pitch, 0-99.
    speed : int
        ``espeak-ng -s`` speaking rate in words per minute.
    peak_db : float
        Peak level (dBFS) of every clip: the person's distance to the microphone.
    effects : tuple of str
        Extra ``sox`` effects (tone of the person's place at the table).
    """

    espeak: str
    pitch: int
    speed: int
    peak_db: float
    effects: tuple[str, ...] = ()


@dataclass(frozen=True)
class Person:
    """Someone at the table.

    Attributes
    ----------
    name : str
        The person's own name, used as the speaker label.
    voice : Voice
        The voice they speak with out of character and as their character.
    character : str
        Their player character; empty for the game master.
    aliases : tuple of str
        Short names the table uses for the character.
    """

    name: str
    voice: Voice
    character: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Npc:
    """A non-player character the game master gives a voice of its own.

    Attributes
    ----------
    name : str
        The NPC's name, used as ``character_tag`` of its lines.
    voice : Voice
        The game master's voice, put on for this NPC.
    """

    name: str
    voice: Voice


@dataclass(frozen=True)
class Turn:
    """One line of the demo script.

    Attributes
    ----------
    speaker : str
        Name of the :class:`Person` speaking.
    text : str
        What they say, in plain words (numbers spelled out).
    ic_ooc : str
        ``"IC"``, ``"OOC"`` or ``"MIXED"``.
    segment_type : str
        One of :data:`livereview.segments.SEGMENT_TYPES`.
    character_tag : str
        The player character for a player's in-character line, the NPC for an NPC
        voice, ``"DM"`` for narration, ``""`` for out-of-character talk.
    pause_after : float
        Silence after the turn, in seconds; after the last turn, the recording's tail.
    """

    speaker: str
    text: str
    ic_ooc: str
    segment_type: str
    character_tag: str
    pause_after: float


PARTY_NAME = "The Lantern Company"

GM = Person(
    "Dana",
    Voice("en-us+m1", pitch=30, speed=165, peak_db=-7.0, effects=("bass", "+3")),
)
PLAYERS = (
    Person(
        "Alex",
        Voice("en-us+f5", pitch=60, speed=175, peak_db=-9.0, effects=("treble", "+2")),
        character="Morgan",
        aliases=("Morg",),
    ),
    Person(
        "Sam",
        Voice("en-us+m6", pitch=45, speed=175, peak_db=-8.0),
        character="Duncan",
        aliases=("Dunc",),
    ),
    Person(
        "Riley",
        Voice("en-us+m7", pitch=58, speed=185, peak_db=-10.0, effects=("lowpass", "6500")),
        character="Flint",
        aliases=("Flinty",),
    ),
)
PEOPLE = (GM, *PLAYERS)

#: NPC voices the game master puts on: the same voice, lower and slower or higher and faster.
NPCS = (
    Npc("Tom", Voice("en-us+m1", pitch=20, speed=150, peak_db=-7.0, effects=("bass", "+3"))),
    Npc("Goblin", Voice("en-us+m1", pitch=50, speed=185, peak_db=-7.0, effects=("bass", "+3"))),
)

#: The demo session, turn by turn.
SCRIPT: tuple[Turn, ...] = (
    Turn(
        "Dana",
        "Alright everyone, let's get started. The pizza should be here in half an hour.",
        OOC,
        "TABLE_TALK",
        "",
        0.5,
    ),
    Turn("Dana", "Rain drums on the roof of the Crooked Lantern inn.", IC, "DM_NARRATION", "DM", 0.5),
    Turn("Dana", "Welcome, travelers. What can old Tom get for you tonight?", IC, "NPC_DIALOGUE", "Tom", 0.6),
    Turn(
        "Alex",
        "Dinner for three, please. And what do you know about the old tower on the hill?",
        IC,
        "CHARACTER_SPEECH",
        "Morgan",
        0.5,
    ),
    Turn(
        "Dana",
        "Nobody goes up there anymore. My nephew went to the ruins and never came back.",
        IC,
        "NPC_DIALOGUE",
        "Tom",
        0.5,
    ),
    Turn("Sam", "Ruins, you say? Sounds like treasure to me.", IC, "CHARACTER_SPEECH", "Duncan", 0.3),
    Turn("Alex", "Can I roll insight to see if he is lying?", OOC, "MECHANICS", "", 0.4),
    Turn("Dana", "Sure, go ahead and roll.", OOC, "MECHANICS", "", 2.2),
    Turn("Alex", "I got an eighteen.", OOC, "MECHANICS", "", 0.5),
    Turn("Dana", "His hands are shaking. He is telling the truth.", IC, "DM_NARRATION", "DM", 0.8),
    Turn("Dana", "Next morning, you climb the hill to the ruined tower.", IC, "DM_NARRATION", "DM", 0.5),
    Turn("Riley", "I creep ahead and look for tracks near the door.", IC, "CHARACTER_ACTION", "Flint", 0.4),
    Turn("Dana", "Give me a survival check.", OOC, "MECHANICS", "", 1.5),
    Turn("Riley", "Natural twenty! I love these dice.", OOC, "MECHANICS", "", 0.5),
    Turn("Dana", "You find muddy footprints. Goblins went inside not long ago.", IC, "DM_NARRATION", "DM", 0.5),
    Turn("Riley", "Goblins. Stay quiet, and keep your axe ready, Duncan.", IC, "CHARACTER_SPEECH", "Flint", 0.4),
    Turn("Sam", "My axe is always ready, Flint.", IC, "CHARACTER_SPEECH", "Duncan", 0.7),
    Turn("Alex", "Sorry, one second, my sister keeps texting me.", OOC, "TABLE_TALK", "", 0.5),
    Turn("Dana", "No problem. Tell her we are busy saving the world.", OOC, "TABLE_TALK", "", 0.6),
    Turn(
        "Alex",
        "Okay, Morgan casts light on her staff. Wait, does that use a spell slot?",
        MIXED,
        "CHARACTER_ACTION",
        "Morgan",
        0.4,
    ),
    Turn("Dana", "No, light is a cantrip, so it is free.", OOC, "MECHANICS", "", 0.5),
    Turn("Dana", "Four goblins leap up from behind the rubble, waving rusty blades.", IC, "DM_NARRATION", "DM", 0.3),
    Turn("Dana", "Intruders! Get them!", IC, "NPC_DIALOGUE", "Goblin", 0.5),
    Turn("Dana", "Everybody roll initiative.", OOC, "MECHANICS", "", 2.8),
    Turn("Sam", "I got a fifteen.", OOC, "MECHANICS", "", 0.12),
    Turn("Riley", "Twelve for me.", OOC, "MECHANICS", "", 0.4),
    Turn("Alex", "Only a four. Typical.", OOC, "MECHANICS", "", 0.5),
    Turn("Dana", "Duncan goes first. What do you do?", OOC, "MECHANICS", "", 0.5),
    Turn(
        "Sam",
        "I swing my axe at the nearest goblin. Do I add my strength bonus?",
        MIXED,
        "CHARACTER_ACTION",
        "Duncan",
        0.4,
    ),
    Turn("Dana", "Yes, strength bonus to hit and to damage.", OOC, "MECHANICS", "", 0.7),
    Turn("Sam", "Nineteen to hit, and eleven damage.", OOC, "MECHANICS", "", 0.5),
    Turn("Dana", "Your axe splits the goblin's shield, and it falls.", IC, "DM_NARRATION", "DM", 0.4),
    Turn("Sam", "Who is next? I can do this all day!", IC, "CHARACTER_SPEECH", "Duncan", 0.6),
    Turn("Riley", "Flint fires two arrows at the goblin near the stairs.", IC, "CHARACTER_ACTION", "Flint", 0.5),
    Turn("Dana", "Both arrows hit, and the goblin tumbles down the steps.", IC, "DM_NARRATION", "DM", 0.5),
    Turn("Alex", "Stay back, or I will burn this whole tower down!", IC, "CHARACTER_SPEECH", "Morgan", 0.4),
    Turn("Dana", "No, no, we surrender! Please don't hurt us!", IC, "NPC_DIALOGUE", "Goblin", 0.8),
    Turn("Riley", "Hold on, I think that's the pizza at the door.", OOC, "TABLE_TALK", "", 0.5),
    Turn("Dana", "Perfect timing. Let's take a short break.", OOC, "TABLE_TALK", "", 3.0),
    Turn("Sam", "Who ordered pineapple on this pizza? That should be illegal.", OOC, "TABLE_TALK", "", 0.1),
    Turn("Alex", "That was me, and I am not sorry.", OOC, "TABLE_TALK", "", 0.5),
    Turn("Dana", "Okay, grab a slice and let's get back to the game.", OOC, "TABLE_TALK", "", 0.8),
    Turn("Alex", "Where is the boy from the inn? Tell us, and you live.", IC, "CHARACTER_SPEECH", "Morgan", 0.5),
    Turn("Dana", "He is in the cellar, locked in a cage.", IC, "NPC_DIALOGUE", "Goblin", 0.6),
    Turn(
        "Riley", "Flint runs to the cellar. Can I pick the lock, or do I roll?", MIXED, "CHARACTER_ACTION", "Flint", 0.4
    ),
    Turn("Dana", "Roll it with advantage.", OOC, "MECHANICS", "", 2.0),
    Turn("Riley", "Sixteen, that should do it.", OOC, "MECHANICS", "", 0.5),
    Turn("Dana", "The lock clicks open. A frightened boy looks up at you.", IC, "DM_NARRATION", "DM", 0.5),
    Turn("Sam", "It's alright, lad. We are taking you home to your uncle.", IC, "CHARACTER_SPEECH", "Duncan", 0.7),
    Turn("Dana", "That's a good place to stop for tonight. Great game, everyone.", OOC, "TABLE_TALK", "", 0.8),
)


def demo_audio_path() -> Path:
    """Path of the demo recording (mono FLAC, 22.05 kHz).

    Returns
    -------
    pathlib.Path
        ``demo_session.flac`` in :data:`DEMO_DIR`.
    """
    return DEMO_DIR / f"{DEMO_SESSION_ID}.flac"


def demo_rttm_path() -> Path:
    """Path of the reference speaker turns of the demo (RTTM).

    Returns
    -------
    pathlib.Path
        ``demo_session.rttm`` in :data:`DEMO_DIR`.
    """
    return DEMO_DIR / f"{DEMO_SESSION_ID}.rttm"


def demo_stm_path() -> Path:
    """Path of the reference transcript of the demo (STM).

    Returns
    -------
    pathlib.Path
        ``demo_session.stm`` in :data:`DEMO_DIR`.
    """
    return DEMO_DIR / f"{DEMO_SESSION_ID}.stm"


def demo_reference_path() -> Path:
    """Path of the reference utterances of the demo (JSON lines).

    Returns
    -------
    pathlib.Path
        ``demo_session.jsonl`` in :data:`DEMO_DIR`.
    """
    return DEMO_DIR / f"{DEMO_SESSION_ID}.jsonl"


def demo_party_path() -> Path:
    """Path of the demo's party description (``party.yaml``).

    Returns
    -------
    pathlib.Path
        ``party.yaml`` in :data:`DEMO_DIR`.
    """
    return DEMO_DIR / "party.yaml"


def demo_reference(path: Path | None = None) -> pd.DataFrame:
    """Load the reference utterances of the demo.

    Parameters
    ----------
    path : pathlib.Path, optional
        A reference JSON-lines file; the bundled one by default.

    Returns
    -------
    pandas.DataFrame
        One row per turn, ordered by time, with the columns in :data:`REFERENCE_COLUMNS`.
    """
    lines = (path or demo_reference_path()).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return pd.DataFrame(rows, columns=list(REFERENCE_COLUMNS))


def pyannote_sample_paths() -> dict[str, Path]:
    """Locate the sample recording shipped inside the pyannote.audio package.

    The package is found without importing it (importing pyannote.audio is slow).

    Returns
    -------
    dict of str to pathlib.Path
        ``"audio"``, ``"rttm"`` and ``"stm"``: ``sample.wav``, ``sample.rttm`` and
        ``sample.stm``.

    Raises
    ------
    FileNotFoundError
        When pyannote.audio is not installed or lacks its sample files.
    """
    try:
        spec = importlib.util.find_spec("pyannote.audio")
    except ModuleNotFoundError:
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        sample = Path(location) / "sample"
        paths = {
            "audio": sample / "sample.wav",
            "rttm": sample / "sample.rttm",
            "stm": sample / "sample.stm",
        }
        if all(path.is_file() for path in paths.values()):
            return paths
    raise FileNotFoundError(
        "pyannote.audio's sample recording (pyannote/audio/sample/sample.wav) was not found; "
        "install the package with `pip install pyannote.audio`"
    )


def _require(program: str) -> str:
    """Return the full path of ``program``, or raise naming the Debian package to install."""
    path = shutil.which(program)
    if path is None:
        raise FileNotFoundError(
            f"`{program}` is needed to build the demo recording but is not on PATH; "
            f"install it with `apt-get install {program}`"
        )
    return path


def _read_wav(path: Path) -> np.ndarray:
    """Read a mono 16-bit WAV file as float32 samples in [-1, 1)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(f"{path}: expected mono 16-bit audio")
        if wav.getframerate() != SAMPLE_RATE:
            raise ValueError(f"{path}: expected {SAMPLE_RATE} Hz, got {wav.getframerate()} Hz")
        data = wav.readframes(wav.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def _write_wav(path: Path, samples: np.ndarray) -> None:
    """Write float samples in [-1, 1] as a mono 16-bit WAV file at :data:`SAMPLE_RATE`."""
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm.tobytes())


def _voice_of(turn: Turn) -> Voice:
    """The voice a turn is spoken with: the NPC's for NPC dialogue, else the speaker's."""
    if turn.segment_type == "NPC_DIALOGUE":
        return next(npc.voice for npc in NPCS if npc.name == turn.character_tag)
    return next(person.voice for person in PEOPLE if person.name == turn.speaker)


def _synthesize(turn: Turn, workdir: Path, espeak: str, sox: str) -> np.ndarray:
    """Speak one turn and return its samples, trimmed to the speech plus a small margin."""
    voice = _voice_of(turn)
    raw, shaped = workdir / "raw.wav", workdir / "shaped.wav"
    subprocess.run(
        [espeak, "-v", voice.espeak, "-p", str(voice.pitch), "-s", str(voice.speed), "-w", str(raw), turn.text],
        check=True,
        capture_output=True,
    )
    # espeak-ng speaks at 22.05 kHz already; ``rate`` only guards against a build that does not.
    effects = ["highpass", "60", *voice.effects, "sinc", f"-{BAND_LIMIT_HZ}", "rate", str(SAMPLE_RATE)]
    subprocess.run(
        [sox, "-D", str(raw), "-b", "16", str(shaped), *effects, "gain", "-n", str(voice.peak_db)],
        check=True,
        capture_output=True,
    )
    samples = _read_wav(shaped)
    loud = np.flatnonzero(np.abs(samples) > np.abs(samples).max() * 10 ** (TRIM_THRESHOLD_DB / 20))
    margin = round(TRIM_MARGIN_S * SAMPLE_RATE)
    return samples[max(loud[0] - margin, 0) : loud[-1] + margin + 1]


def _background_noise(n_samples: int) -> np.ndarray:
    """Seeded low rumble at :data:`NOISE_RMS_DBFS`: a quiet room, traffic far away.

    The spectrum falls as 1/f above 40 Hz (brown noise), which FLAC stores cheaply.
    """
    rng = np.random.default_rng(NOISE_SEED)
    spectrum = np.fft.rfft(rng.standard_normal(n_samples))
    freqs = np.fft.rfftfreq(n_samples, d=1.0 / SAMPLE_RATE)
    spectrum /= np.maximum(freqs, 40.0)
    noise = np.fft.irfft(spectrum, n=n_samples)
    return noise * (10 ** (NOISE_RMS_DBFS / 20) / np.sqrt(np.mean(noise**2)))


def _reference_rows(starts: Sequence[int], ends: Sequence[int]) -> list[dict[str, object]]:
    """Reference utterances of :data:`SCRIPT` given each turn's first and end sample."""
    return [
        {
            "start": round(start / SAMPLE_RATE, 3),
            "end": round(end / SAMPLE_RATE, 3),
            "speaker": turn.speaker,
            "text": turn.text,
            "ic_ooc": turn.ic_ooc,
            "segment_type": turn.segment_type,
            "character_tag": turn.character_tag,
        }
        for turn, start, end in zip(SCRIPT, starts, ends, strict=True)
    ]


def _party_yaml() -> str:
    """The party description in the ``party.yaml`` schema."""
    lines = [f"party: {PARTY_NAME}", f"game_master: {GM.name}", "characters:"]
    for player in PLAYERS:
        lines += [
            f"  - name: {player.character}",
            f"    player: {player.name}",
            f"    aliases: [{', '.join(player.aliases)}]",
        ]
    return "\n".join(lines) + "\n"


def _write_references(out_dir: Path, rows: list[dict[str, object]]) -> None:
    """Write the JSON-lines, RTTM, STM and party files next to the audio."""
    stem = out_dir / DEMO_SESSION_ID
    jsonl = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    rttm = "".join(
        f"SPEAKER {DEMO_SESSION_ID} 1 {row['start']:.3f} {row['end'] - row['start']:.3f} "
        f"<NA> <NA> {row['speaker']} <NA> <NA>\n"
        for row in rows
    )
    stm = "".join(
        f"{DEMO_SESSION_ID} 1 {row['speaker']} {row['start']:.3f} {row['end']:.3f} {row['text']}\n" for row in rows
    )
    stem.with_suffix(".jsonl").write_text(jsonl, encoding="utf-8")
    stem.with_suffix(".rttm").write_text(rttm, encoding="utf-8")
    stem.with_suffix(".stm").write_text(stm, encoding="utf-8")
    (out_dir / "party.yaml").write_text(_party_yaml(), encoding="utf-8")


def build_demo(out_dir: Path) -> None:
    """Synthesize the demo recording and write it with its reference files.

    Writes ``demo_session.flac``, ``.rttm``, ``.stm``, ``.jsonl`` and ``party.yaml``
    into ``out_dir``. The output depends only on :data:`SCRIPT`, the voices, the
    seed and the installed espeak-ng and sox.

    Parameters
    ----------
    out_dir : pathlib.Path
        Folder to write into; created when missing.

    Raises
    ------
    FileNotFoundError
        When ``espeak-ng`` or ``sox`` is not installed.
    """
    espeak, sox = _require("espeak-ng"), _require("sox")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="livereview-demo-") as tmp:
        workdir = Path(tmp)
        pieces = [np.zeros(round(LEAD_IN_S * SAMPLE_RATE), dtype=np.float32)]
        starts, ends = [], []
        cursor = len(pieces[0])
        for turn in SCRIPT:
            clip = _synthesize(turn, workdir, espeak, sox)
            pause = np.zeros(round(turn.pause_after * SAMPLE_RATE), dtype=np.float32)
            starts.append(cursor)
            ends.append(cursor + len(clip))
            pieces += [clip, pause]
            cursor += len(clip) + len(pause)
        mix = np.concatenate(pieces).astype(np.float64)
        mix += _background_noise(len(mix))
        mixed = workdir / "mix.wav"
        _write_wav(mixed, mix)
        subprocess.run(
            [sox, "-D", str(mixed), "--comment", "", "-C", "8", str(out_dir / f"{DEMO_SESSION_ID}.flac")],
            check=True,
            capture_output=True,
        )
    _write_references(out_dir, _reference_rows(starts, ends))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m livereview.demo build [--out DIR]``.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        Exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m livereview.demo", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="regenerate the demo recording and its references")
    build.add_argument("--out", type=Path, default=DEMO_DIR, help=f"output folder (default: {DEMO_DIR})")
    args = parser.parse_args(argv)
    try:
        build_demo(args.out)
    except FileNotFoundError as error:
        parser.exit(1, f"error: {error}\n")
    reference = demo_reference(args.out / f"{DEMO_SESSION_ID}.jsonl")
    total = reference["end"].iloc[-1] + SCRIPT[-1].pause_after
    counts = reference["ic_ooc"].value_counts().to_dict()
    print(f"wrote {len(reference)} turns, {total:.1f} s, {counts} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
