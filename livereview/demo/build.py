"""How the bundled demo recording is made: every line of the script spoken by espeak-ng, mixed by sox.

The demo is a game master and three players at a fantasy one-shot: narration, NPC
voices, players speaking and acting as their characters, and table talk about dice,
rules, pizza and phones. Every person is voiced by ``espeak-ng`` with a voice of
their own; ``sox`` shapes each clip and encodes the mix. The reference files
(speaker turns, transcript and IC/OOC labels) come from the same script (:mod:`livereview.demo.script`), with
times measured on the synthesized clips, so they agree with the audio by
construction.

Regenerate the files with::

    python -m livereview.demo build [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from livereview.demo.files import DEMO_DIR, DEMO_SESSION_ID, demo_reference
from livereview.demo.script import GM, NPCS, PARTY_NAME, PEOPLE, PLAYERS, SCENES, SCRIPT, Turn, Voice

#: Sample rate of the bundled audio (espeak-ng's own rate).
SAMPLE_RATE = 22050

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


def scene_rows(rows: Sequence[dict[str, object]]) -> list[dict[str, object]]:
    """The reference scenes of :data:`SCENES`, timed by the reference utterances ``rows``."""
    bounds = [*(scene.first_turn for scene in SCENES), len(rows)]
    return [
        {
            "scene": scene.name,
            "kind": scene.kind,
            "start": rows[first]["start"],
            "end": rows[last - 1]["end"],
            "first_turn": first,
            "last_turn": last - 1,
        }
        for scene, first, last in zip(SCENES, bounds, bounds[1:], strict=False)
    ]


def _write_references(out_dir: Path, rows: list[dict[str, object]]) -> None:
    """Write the JSON-lines, RTTM, STM, scene and party files next to the audio."""
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
    scenes = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in scene_rows(rows))
    (out_dir / f"{DEMO_SESSION_ID}.scenes.jsonl").write_text(scenes, encoding="utf-8")
    (out_dir / "party.yaml").write_text(_party_yaml(), encoding="utf-8")


def build_demo(out_dir: Path) -> None:
    """Synthesize the demo recording and write it with its reference files.

    Writes ``demo_session.flac``, ``.rttm``, ``.stm``, ``.jsonl``, ``.scenes.jsonl`` and ``party.yaml``
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
