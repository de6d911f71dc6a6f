"""Every input checked before work starts: nothing loads and nothing is written until all are right.

:func:`plan_run` checks what a run needs (the recording opens and has an audio
stream, the party file parses, the options are in range, the models are installed,
the output directory is writable with room for the results, an existing session
directory belongs to this recording and these options and is not being written) and
raises one :class:`InputError` listing every problem, one line each.

Usage
-----
>>> plan = plan_run("game.flac", out_dir="output", options=RunOptions())   # doctest: +SKIP
>>> Session.create(plan.info.path, session_id=plan.session_id, options=plan.options)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livereview.core.options import (
    DEFAULT_WHISPER_MODEL,
    OFFLINE_DIARIZATION,
    ChunkOptions,
    DiarizeOptions,
    RunOptions,
    TranscribeOptions,
)
from livereview.core.party import load_party
from livereview.stages.audio import AudioError, AudioInfo, file_hash, head_hash, probe
from livereview.stages.classify import classifier_problem
from livereview.stages.diarize.models import missing_models
from livereview.stages.transcribe import missing_model
from livereview.store.results import SessionStore
from livereview.store.writer import WriterLock

#: Devices a run may ask for.
DEVICES = ("auto", "cpu", "cuda")
#: ``num_speakers`` value that leaves the count open even with a party file.
AUTO_SPEAKERS = "auto"
#: Room the results need per hour of audio (segments, turns with embeddings, events), in bytes.
BYTES_PER_AUDIO_HOUR = 40_000_000
#: Room asked for whatever the length (metadata, indexes, exports).
BYTES_AT_LEAST = 20_000_000


class InputError(ValueError):
    """Inputs that cannot work, found before any work: :attr:`problems` holds one line each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = [" ".join(str(problem).split()) for problem in problems]  # one line each
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class RunPlan:
    """A run whose inputs all checked out."""

    info: AudioInfo
    options: RunOptions
    session_id: str
    directory: Path


def default_session_id(audio: Path) -> str:
    """A session id from the recording's file name (``Game Night 3.flac`` -> ``game-night-3``)."""
    return re.sub(r"[^a-z0-9]+", "-", audio.stem.lower()).strip("-") or "session"


def build_options(
    *,
    chunk_length: Any = None,
    whisper_model: str = DEFAULT_WHISPER_MODEL,
    language: str | None = None,
    device: str = "auto",
    diarization_pipeline: str = OFFLINE_DIARIZATION,
    num_speakers: int | str | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    hub_token: str | None = None,
    classifier: Any = None,
    party: os.PathLike[str] | str | None = None,
) -> tuple[RunOptions | None, list[str]]:
    """The run's options from :func:`livereview.run`'s arguments, and every problem with them.

    With a party file and neither ``num_speakers`` nor ``max_speakers``, the table (the
    game master and the players) bounds the number of speakers; ``num_speakers="auto"``
    leaves it open.
    """
    problems: list[str] = []
    open_count = num_speakers == AUTO_SPEAKERS
    if open_count:
        num_speakers = None
    elif isinstance(num_speakers, str):
        problems.append(f"num_speakers must be a whole number or {AUTO_SPEAKERS!r}; got {num_speakers!r}")
        num_speakers = None
    chunk = _collect(problems, lambda: ChunkOptions.from_value(chunk_length), (ValueError, TypeError))
    if device not in DEVICES:
        problems.append(f"device {device!r} is not one of {DEVICES}")
    transcribe = _collect(problems, lambda: TranscribeOptions(model=whisper_model, device=device, language=language))
    diarize = _collect(
        problems,
        lambda: DiarizeOptions(
            pipeline=diarization_pipeline,
            num_speakers=num_speakers,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
            device=device,
            token=hub_token,
        ),
        (ValueError, TypeError),
    )
    if problems:
        return None, problems
    if party is not None and not (open_count or num_speakers or max_speakers):
        table = _table_size(party)
        if table is not None and (min_speakers or 0) <= table:
            diarize = dataclasses.replace(diarize, max_speakers=table)
    return RunOptions(chunk, transcribe, diarize, classifier, os.fspath(party) if party is not None else None), []


def _table_size(party: os.PathLike[str] | str) -> int | None:
    """How many people sit at the party's table (game master and players); None if the file does not read
    (:func:`plan_run` says why)."""
    try:
        return load_party(party).table_size()
    except (OSError, ValueError):
        return None


def plan_run(
    audio: os.PathLike[str] | str,
    *,
    out_dir: os.PathLike[str] | str,
    options: RunOptions | None,
    session_id: str | None = None,
    follow: bool = False,
    problems: Iterable[str] = (),
) -> RunPlan:
    """Check every input of a run; the plan to run it, or :class:`InputError` naming every problem.

    Parameters
    ----------
    audio : path
        The recording.
    out_dir : path
        Where session directories go.
    options : RunOptions or None
        The options (None when building them failed: ``problems`` says why).
    session_id : str, optional
        Directory name; from the recording's file name by default.
    follow : bool
        The recording is still being written: its length and hash are not known yet.
    problems : iterable of str
        Problems already found (with the options).
    """
    problems = list(problems)
    built = options
    info = _collect(problems, lambda: probe(audio), (FileNotFoundError, IsADirectoryError, AudioError))
    if built is not None:
        if built.party is not None:
            _collect(problems, lambda: load_party(built.party), (FileNotFoundError, ValueError))
        problems += [
            problem
            for problem in (
                missing_model(built.transcribe),
                missing_models(built.diarize),
                classifier_problem(built.classifier),
            )
            if problem
        ]
    name = session_id or (default_session_id(Path(audio)) if audio else "session")
    if session_id is not None and (not session_id.strip() or Path(session_id).name != session_id):
        problems.append(f"session id {session_id!r} must be a plain folder name (no slashes, not empty)")
    directory = Path(out_dir) / name
    problems += _room_problems(directory, info.duration if info is not None and not follow else 3600.0)
    if info is not None and built is not None and SessionStore(directory).exists():
        problems += existing_session_problems(directory, info.path, built)
        holder = WriterLock(directory).holder()
        if holder is not None:
            problems.append(
                f"session {name!r} is being written by {holder.get('what')} (pid {holder.get('pid')} "
                f"on {holder.get('host')}, since {holder.get('since')}); wait for it to end"
            )
    if problems:
        raise InputError(problems)
    assert info is not None and built is not None
    return RunPlan(info, built, name, directory)


def _current_form(stored: dict[str, Any]) -> dict[str, Any]:
    """A session's stored options as this version writes them: an option added since takes its default."""
    try:
        return RunOptions.from_config(stored).to_config() | {"party": stored.get("party")}
    except (TypeError, KeyError, ValueError):  # options of a newer version: compare as stored
        return stored


def existing_session_problems(directory: Path, audio: Path, options: RunOptions) -> list[str]:
    """Why a run of ``audio`` with ``options`` cannot resume in ``directory``, which holds a session.

    A session of a followed recording is named by the hash of the recording's first MiB
    (the file went on growing); any other by the hash of the whole file.
    """
    problems = []
    metadata = SessionStore(directory).read_metadata()
    followed = "sha256_head" in metadata["audio"]
    digest = head_hash(audio) if followed else file_hash(audio)
    if metadata["audio"]["sha256_head" if followed else "sha256"] != digest:
        problems.append(
            f"session directory {directory} holds results for another recording "
            f"({metadata['audio']['path']}); pass another session id or output directory"
        )
    config, stored = options.to_config(), _current_form(metadata["config"])
    changed = sorted(key for key in config if key != "party" and stored.get(key) != config[key])
    if _party_changed(metadata, options):
        changed.append("party")
    if changed:
        problems.append(
            f"session {directory.name!r} was run with other options ({', '.join(changed)} differ); "
            "resuming would mix results. Pass another session id, or use reruns to change part of it."
        )
    return problems


def _party_changed(metadata: dict[str, Any], options: RunOptions) -> bool:
    """Whether ``options`` name another party than the session was run with (by content when it was recorded)."""
    record = metadata.get("party")
    if options.party is None or record is None:
        return options.party != metadata["config"].get("party")
    return not Path(options.party).is_file() or file_hash(options.party) != record["sha256"]


def _room_problems(directory: Path, seconds: float) -> list[str]:
    """The output directory must be creatable, writable and have room for the results."""
    existing = directory
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return [f"cannot create the session directory {directory}: {existing} is a file, not a folder"]
    if not os.access(existing, os.W_OK | os.X_OK):
        return [f"cannot write the session directory {directory}: {existing} is not writable"]
    needed = max(BYTES_AT_LEAST, round(seconds / 3600 * BYTES_PER_AUDIO_HOUR))
    free = shutil.disk_usage(existing).free
    if free < needed:
        return [
            f"not enough free space for the results in {existing}: {free / 1e6:.0f} MB free, "
            f"about {needed / 1e6:.0f} MB needed; free some space or pass another output directory"
        ]
    return []


def _collect(problems: list[str], make: Callable[[], Any], errors: tuple[type[Exception], ...] = (ValueError,)) -> Any:
    """``make()``'s value, or None with its error's message added to ``problems``."""
    try:
        return make()
    except errors as error:
        problems.append(str(error))
        return None
