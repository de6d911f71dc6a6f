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

from livereview.segments import IC, MIXED, OOC, SEGMENT_TYPES

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
    Voice("en-gb-x-rp+m1", pitch=30, speed=170, peak_db=-7.0, effects=("bass", "+3")),
)
PLAYERS = (
    Person(
        "Alex",
        Voice("en-us+f3", pitch=60, speed=180, peak_db=-9.0, effects=("treble", "+2")),
        character="Mira",
        aliases=("Mir",),
    ),
    Person(
        "Sam",
        Voice("en-gb-scotland+m3", pitch=42, speed=175, peak_db=-8.0),
        character="Borin",
        aliases=("Bo",),
    ),
    Person(
        "Riley",
        Voice("en-us+m7", pitch=58, speed=185, peak_db=-10.0, effects=("lowpass", "6500")),
        character="Kestrel",
        aliases=("Kes",),
    ),
)
PEOPLE = (GM, *PLAYERS)

#: NPC voices the game master puts on: the same voice, lower and slower or higher and faster.
NPCS = (
    Npc("Tom", Voice("en-gb-x-rp+m1", pitch=20, speed=150, peak_db=-7.0, effects=("bass", "+3"))),
    Npc("Goblin", Voice("en-gb-x-rp+m1", pitch=50, speed=190, peak_db=-7.0, effects=("bass", "+3"))),
)

_IC_TYPES = ("DM_NARRATION", "NPC_DIALOGUE", "CHARACTER_SPEECH", "CHARACTER_ACTION")


def _turn(
    speaker: str, text: str, segment_type: str, tag: str = "", pause: float = 0.6, *,
    mixed: bool = False,
) -> Turn:
    """Build a :class:`Turn` whose IC/OOC label follows its segment type unless ``mixed``."""
    ic_ooc = MIXED if mixed else IC if segment_type in _IC_TYPES else OOC
    return Turn(speaker, text, ic_ooc, segment_type, tag, pause)


NARR, NPC, SPEECH, ACTION = "DM_NARRATION", "NPC_DIALOGUE", "CHARACTER_SPEECH", "CHARACTER_ACTION"
MECH, TALK = "MECHANICS", "TABLE_TALK"

#: The demo session, turn by turn.
SCRIPT: tuple[Turn, ...] = (
    _turn("Dana", "Alright everyone, let's get started. The pizza should be here in half an hour.",
          TALK, pause=0.5),
    _turn("Dana", "Rain drums on the roof of the Crooked Lantern inn.", NARR, "DM", pause=0.5),
    _turn("Dana", "Welcome, travelers. What can old Tom get for you tonight?", NPC, "Tom",
          pause=0.6),
    _turn("Alex", "Three bowls of stew, please. What do you know about the old watchtower?",
          SPEECH, "Mira", pause=0.5),
    _turn("Dana", "Nobody goes up there anymore. My nephew went to the ruins and never came "
          "back.", NPC, "Tom", pause=0.5),
    _turn("Sam", "Ruins, you say? Sounds like treasure to me.", SPEECH, "Borin", pause=0.3),
    _turn("Riley", "Of course Borin thinks everything is treasure.", TALK, pause=0.5),
    _turn("Alex", "Can I roll insight to see if he is lying?", MECH, pause=0.4),
    _turn("Dana", "Sure, go ahead and roll.", MECH, pause=2.2),
    _turn("Alex", "That's a seventeen.", MECH, pause=0.5),
    _turn("Dana", "His hands are shaking. He is telling the truth.", NARR, "DM",
          pause=0.8),
    _turn("Dana", "Next morning, you climb the muddy path to the ruined watchtower.", NARR, "DM", pause=0.5),
    _turn("Riley", "I creep ahead and look for tracks near the door.", ACTION, "Kestrel",
          pause=0.4),
    _turn("Dana", "Give me a survival check.", MECH, pause=1.5),
    _turn("Riley", "Natural twenty! These dice finally love me.", MECH, pause=0.5),
    _turn("Dana", "You find muddy footprints. Goblins went inside not long ago.", NARR, "DM", pause=0.5),
    _turn("Riley", "Goblins. Stay quiet, and keep your axe ready, Borin.", SPEECH, "Kestrel",
          pause=0.4),
    _turn("Sam", "My axe is always ready, Kes.", SPEECH, "Borin", pause=0.7),
    _turn("Alex", "Sorry, one second, my sister keeps texting me.", TALK, pause=0.5),
    _turn("Dana", "No problem. Tell her we are busy saving the world.", TALK, pause=0.6),
    _turn("Alex", "Okay, Mira casts light on her staff. Wait, does that use a spell slot?", ACTION, "Mira", pause=0.4, mixed=True),
    _turn("Dana", "No, light is a cantrip, so it is free.", MECH, pause=0.5),
    _turn("Dana", "Four goblins leap up from behind the rubble, waving rusty blades.", NARR, "DM",
          pause=0.3),
    _turn("Dana", "Intruders! Get them, boys!", NPC, "Goblin", pause=0.5),
    _turn("Dana", "Everybody roll initiative.", MECH, pause=2.8),
    _turn("Sam", "I got a fifteen.", MECH, pause=0.12),
    _turn("Riley", "Twelve for me.", MECH, pause=0.4),
    _turn("Alex", "Only a four. Typical.", MECH, pause=0.5),
    _turn("Dana", "Borin goes first. What do you do?", MECH, pause=0.5),
    _turn("Sam", "I swing my axe at the nearest goblin. Do I add my strength bonus?", ACTION, "Borin", pause=0.4, mixed=True),
    _turn("Dana", "Yes, strength bonus to hit and to damage.", MECH, pause=0.7),
    _turn("Sam", "Nineteen to hit, and eleven damage.", MECH, pause=0.5),
    _turn("Dana", "Your axe splits the goblin's shield, and it falls.", NARR,
          "DM", pause=0.4),
    _turn("Sam", "Who is next? I can do this all day!", SPEECH, "Borin", pause=0.6),
    _turn("Riley", "Kestrel fires two arrows at the goblin near the stairs.", ACTION, "Kestrel",
          pause=0.5),
    _turn("Dana", "Both arrows hit, and the goblin tumbles down the steps.", NARR, "DM",
          pause=0.5),
    _turn("Alex", "Stay back, or I will burn this whole tower down!", SPEECH, "Mira",
          pause=0.4),
    _turn("Dana", "No, no, we surrender! Please don't hurt us!", NPC, "Goblin", pause=0.8),
    _turn("Riley", "Hold on, I think that's the pizza at the door.", TALK, pause=0.5),
    _turn("Dana", "Perfect timing. Let's take a short break.", TALK, pause=3.2),
    _turn("Sam", "Who ordered pineapple on this pizza? That should be illegal.", TALK,
          pause=0.1),
    _turn("Alex", "That was me, and I regret nothing.", TALK, pause=0.5),
    _turn("Dana", "Okay, grab a slice and let's get back to the game.", TALK, pause=0.8),
    _turn("Alex", "Where is the innkeeper's nephew? Tell us, and you live.", SPEECH,
          "Mira", pause=0.5),
    _turn("Dana", "He is in the cellar, locked in a cage.", NPC, "Goblin", pause=0.6),
    _turn("Riley", "Kestrel runs to the cellar. Can I pick the lock, or do I roll?",
          ACTION, "Kestrel", pause=0.4, mixed=True),
    _turn("Dana", "Roll it with advantage.", MECH, pause=2.0),
    _turn("Riley", "Sixteen, that should do it.", MECH, pause=0.5),
    _turn("Dana", "The lock clicks open. A frightened boy looks up at you.", NARR,
          "DM", pause=0.5),
    _turn("Sam", "It's alright, lad. We are taking you home to your uncle.", SPEECH, "Borin",
          pause=0.7),
    _turn("Dana", "That's a good place to stop for tonight. Great game, everyone.", TALK,
          pause=1.0),
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
        [espeak, "-v", voice.espeak, "-p", str(voice.pitch), "-s", str(voice.speed),
         "-w", str(raw), turn.text],
        check=True, capture_output=True,
    )
    subprocess.run(
        [sox, "-D", str(raw), "-b", "16", str(shaped), "highpass", "60", *voice.effects,
         "sinc", f"-{BAND_LIMIT_HZ}", "rate", str(SAMPLE_RATE), "gain", "-n", str(voice.peak_db)],
        check=True, capture_output=True,
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
        f"{DEMO_SESSION_ID} 1 {row['speaker']} {row['start']:.3f} {row['end']:.3f} {row['text']}\n"
        for row in rows
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
            [sox, "-D", str(mixed), "--comment", "", "-C", "8",
             str(out_dir / f"{DEMO_SESSION_ID}.flac")],
            check=True, capture_output=True,
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
