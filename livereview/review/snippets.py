"""Audio snippets of a session: one clip per segment, speaker or scene, cut from the recording.

Clips are cut from the original recording by streaming decode
(:class:`~livereview.stages.audio.SpanReader`: at its own sample rate and channels, never
the whole recording in memory) and encoded with PyAV as FLAC, WAV or Ogg Opus, tagged
with the speaker, character, IC/OOC label and text. A speaker's or a scene's clip joins
its segments with :data:`GAP_SECONDS` of silence. Everything comes from the merged view,
so corrections are in the clips and the manifest.

The export folder holds the clips, ``manifest.jsonl`` and ``manifest.csv`` (clip id, file,
segment ids, start, end, speaker, player, character, IC/OOC, text, the clip's SHA-256
and the override seq it reflects). Exporting again rewrites only the clips whose audio
span or labels changed (each clip's fingerprint covers both) and removes clips that are
no longer part of it. Every finished clip is journaled in ``.manifest.partial.jsonl``,
and clips are written to a temporary name and renamed, so an interrupted export
resumes where it stopped. The bytes depend only on the inputs: exporting twice gives
identical files.

Usage
-----
>>> result = session.export_snippets(selection="ic", by="segment", format="flac")   # doctest: +SKIP
>>> result.manifest[["clip_id", "speaker", "text"]]                                  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from livereview.core.segments import IC, MIXED, OOC
from livereview.review.artifacts import current_stamp, record_artifact
from livereview.review.view import require_view_columns
from livereview.stages.audio import SpanReader, file_hash

if TYPE_CHECKING:
    from livereview.review.state import SessionState

#: Merged-view columns the snippets read.
SNIPPET_COLUMNS = ("segment_id", "start", "end", "text", "speaker_id", "character_tag", "ic_ooc")
#: Selection -> IC/OOC labels kept (None: all).
SELECTIONS: dict[str, tuple[str, ...] | None] = {"all": None, "ic": (IC, MIXED), "ooc": (OOC, MIXED)}
#: How clips are grouped.
GROUPINGS = ("segment", "speaker", "scene")
#: Format -> (container, codec, fixed sample rate or None for the recording's).
FORMATS: dict[str, tuple[str, str, int | None]] = {
    "flac": ("flac", "flac", None),
    "wav": ("wav", "pcm_s16le", None),
    "ogg": ("ogg", "libopus", 48_000),
}
#: Silence between the segments of one speaker's or scene's clip.
GAP_SECONDS = 0.5
#: Columns of the manifest, in order (``manifest.csv``; ``manifest.jsonl`` adds ``fingerprint``).
MANIFEST_COLUMNS = (
    "clip_id",
    "file",
    "segment_ids",
    "start",
    "end",
    "duration",
    "speaker",
    "player",
    "character",
    "ic_ooc",
    "text",
    "sha256",
    "override_seq",
)
JOURNAL = ".manifest.partial.jsonl"
_FORMAT_VERSION = 1
_WINDOWS_RESERVED = re.compile(r"^(?:con|prn|aux|nul|com\d|lpt\d)(?:\.|$)", re.IGNORECASE)


class RecordingChangedError(ValueError):
    """The session's recording is not the file it was processed from (its SHA-256 differs)."""


@dataclass
class Clip:
    """One planned clip: its spans of the recording and its labels."""

    clip_id: str
    file: str
    spans: list[tuple[float, float]]
    segment_ids: list[str]
    labels: dict[str, Any]
    override_seq: int
    fingerprint: str = ""


@dataclass
class SnippetExport:
    """What an export did.

    Attributes
    ----------
    directory : Path
        The export folder.
    manifest : pandas.DataFrame
        One row per clip (:data:`MANIFEST_COLUMNS`).
    written, kept, removed : list of str
        Clip files encoded this time, left as they were, and deleted as stale.
    archive : Path, optional
        The zip file, when asked for.
    """

    directory: Path
    manifest: pd.DataFrame
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    archive: Path | None = None


def export_snippets(
    session: SessionState,
    view: pd.DataFrame,
    *,
    selection: str = "all",
    by: str = "segment",
    format: str = "flac",
    out: os.PathLike[str] | str | None = None,
    scenes: pd.DataFrame | None = None,
    archive: bool = False,
    recording: os.PathLike[str] | str | None = None,
    progress: bool = True,
) -> SnippetExport:
    """Write the session's clips and manifest into ``out`` (see the module docstring).

    Parameters
    ----------
    session : SessionState
    view : pandas.DataFrame
        The session's merged view (:meth:`Session.view`).
    selection : str
        ``"all"``, ``"ic"`` or ``"ooc"`` segments (MIXED counts for both).
    by : str
        ``"segment"`` (a clip each), ``"speaker"`` or ``"scene"`` (joined with short gaps).
    format : str
        ``"flac"``, ``"wav"`` or ``"ogg"`` (Opus).
    out : path, optional
        The export folder; ``snippets/<by>-<selection>/`` in the session directory by default.
    scenes : pandas.DataFrame, optional
        The session's scenes (:meth:`Session.scenes`), needed for ``by="scene"``.
    archive : bool
        Also write ``<out>.zip`` with the clips and manifests.
    recording : path, optional
        The recording, when it has moved; it must have the recorded SHA-256.
    progress : bool
        Show a progress bar.

    Raises
    ------
    ValueError
        An unknown selection, grouping or format.
    FileNotFoundError
        The recording is missing.
    RecordingChangedError
        The recording is not the file the session was processed from.
    """
    for value, allowed, what in (
        (selection, SELECTIONS, "selection"),
        (by, GROUPINGS, "grouping"),
        (format, FORMATS, "format"),
    ):
        if value not in allowed:
            msg = f"unknown snippet {what} {value!r}; use one of {', '.join(allowed)}"
            raise ValueError(msg)
    path = check_recording(session, recording)
    stamp = current_stamp(session)
    require_view_columns(view, SNIPPET_COLUMNS, consumer="snippets")
    if by == "scene" and scenes is None:
        msg = "clips by scene need the session's scenes: pass scenes=session.scenes()"
        raise ValueError(msg)
    directory = Path(out) if out is not None else session.directory / "snippets" / f"{by}-{selection}"
    directory.mkdir(parents=True, exist_ok=True)
    clips = plan_clips(
        view,
        selection=selection,
        by=by,
        extension=format,
        speaker_names=_players(session),
        override_seqs=_override_seqs(session),
        scenes=scenes,
    )
    digest = session.metadata["audio"].get("sha256", "")
    for clip in clips:
        clip.fingerprint = _fingerprint(clip, format, digest, session.session_id)
    result = _write_clips(session, path, directory, clips, format, progress)
    if archive:
        result.archive = _zip(directory, result.manifest)
    record_artifact(
        session,
        f"snippets:{os.path.relpath(directory, session.directory)}",
        "snippets",
        directory,
        stamp,
        options={"selection": selection, "by": by, "format": format},
    )
    return result


def check_recording(session: SessionState, recording: os.PathLike[str] | str | None = None) -> Path:
    """The session's recording, checked against the SHA-256 recorded when it was processed.

    Raises
    ------
    FileNotFoundError, RecordingChangedError
    """
    path = Path(recording) if recording is not None else Path(session.audio_path)
    if not path.is_file():
        msg = (
            f"the recording of session {session.session_id!r} is missing: {path}; clips are cut from it. "
            "Put it back, or pass recording=PATH (--recording) with the same file"
        )
        raise FileNotFoundError(msg)
    recorded = session.metadata["audio"].get("sha256")
    actual = file_hash(path)
    if recorded and actual != recorded:
        msg = (
            f"recording {path} changed since session {session.session_id!r} was processed "
            f"(SHA-256 {actual[:12]}…, recorded {recorded[:12]}…); clips would not match the segments. "
            "Restore the original file, or pass recording=PATH with it"
        )
        raise RecordingChangedError(msg)
    return path


def plan_clips(
    view: pd.DataFrame,
    *,
    selection: str,
    by: str,
    extension: str,
    speaker_names: Mapping[str, str],
    override_seqs: Mapping[str, int],
    scenes: pd.DataFrame | None = None,
) -> list[Clip]:
    """The clips an export makes from the merged view, in time order of their first span."""
    labels = SELECTIONS[selection]
    rows = view if labels is None else view[view["ic_ooc"].isin(labels)]
    rows = rows[rows["end"] > rows["start"]].sort_values(["start", "end"], kind="stable")
    records = rows.assign(segment_id=rows["segment_id"].astype(str)).to_dict("records")
    groups: list[tuple[str, str, list[dict[str, Any]]]] = []
    if by == "segment":
        groups = [(r["segment_id"], _safe_name(r["segment_id"]), [r]) for r in records]
    elif by == "speaker":
        by_speaker: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            by_speaker.setdefault(_text(record["speaker_id"]) or "unknown", []).append(record)
        names: set[str] = set()
        for speaker, members in by_speaker.items():
            groups.append((f"speaker-{speaker}", _unique(f"speaker-{_safe_name(speaker)}", speaker, names), members))
    else:
        scene_of = (
            {sid: scene for scene, ids in zip(scenes["scene_id"], scenes["segment_ids"], strict=True) for sid in ids}
            if scenes is not None
            else {}
        )
        by_scene: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            if record["segment_id"] in scene_of:
                by_scene.setdefault(scene_of[record["segment_id"]], []).append(record)
        groups = [(scene, _safe_name(scene), members) for scene, members in by_scene.items()]
    clips = [
        _clip(clip_id, f"{stem}.{extension}", members, speaker_names, override_seqs)
        for clip_id, stem, members in groups
    ]
    return sorted(clips, key=lambda c: (c.spans[0][0], c.clip_id))


def _clip(
    clip_id: str,
    file: str,
    members: list[dict[str, Any]],
    speaker_names: Mapping[str, str],
    override_seqs: Mapping[str, int],
) -> Clip:
    speakers = _joined(_text(m["speaker_id"]) for m in members)
    players = _joined(speaker_names.get(s) for s in (_text(m["speaker_id"]) for m in members) if s)
    characters = _joined(_text(m["character_tag"]) for m in members)
    kinds = {_text(m["ic_ooc"]) for m in members} - {None}
    labels = {
        "speaker": speakers,
        "player": players,
        "character": characters,
        "ic_ooc": kinds.pop() if len(kinds) == 1 else (MIXED if kinds else None),
        "text": " ".join(" ".join(str(m["text"]).split()) for m in members if _text(m["text"])),
    }
    ids = [m["segment_id"] for m in members]
    return Clip(
        clip_id,
        file,
        [(round(float(m["start"]), 3), round(float(m["end"]), 3)) for m in members],
        ids,
        labels,
        max((override_seqs.get(i, 0) for i in ids), default=0),
    )


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _joined(values: Iterable[str | None]) -> str | None:
    kept = list(dict.fromkeys(v for v in values if v))
    return "; ".join(kept) if kept else None


def _safe_name(name: str) -> str:
    """A file-name stem safe on every OS: ASCII letters, digits, ``.``, ``_``, ``-``; no reserved device name."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^a-z0-9._-]+", "-", ascii_name.casefold()).strip("-.")[:80] or "unnamed"
    return f"_{stem}" if _WINDOWS_RESERVED.match(stem) else stem


def _unique(stem: str, original: str, used: set[str]) -> str:
    """``stem``, with a short hash of ``original`` when another name already took it (case-insensitive file systems)."""
    if stem in used:
        stem = f"{stem}-{hashlib.sha1(original.encode()).hexdigest()[:6]}"
    used.add(stem)
    return stem


def _players(session: SessionState) -> dict[str, str]:
    """Speaker id -> player: the speaker mapping, and the party's people as themselves."""
    names = dict(session.speaker_map)
    party = session.party
    if party is not None:
        names.update({person: person for person in party.people()})
    return names


def _override_seqs(session: SessionState) -> dict[str, int]:
    """Segment id -> seq of the latest correction in effect on it."""
    current = session.overrides()
    if current.empty:
        return {}
    return {str(k): int(v) for k, v in current.groupby("segment_id")["seq"].max().items()}


def _fingerprint(clip: Clip, fmt: str, recording: str, session_id: str) -> str:
    data = {
        "version": _FORMAT_VERSION,
        "recording": recording,
        "format": fmt,
        "gap": GAP_SECONDS,
        "spans": clip.spans,
        "tags": _tags(clip, session_id),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _tags(clip: Clip, session_id: str) -> dict[str, str]:
    labels = clip.labels
    comment = "; ".join(f"{k}: {labels[k]}" for k in ("ic_ooc", "character", "player") if labels[k])
    tags = {
        "title": (labels["text"] or "")[:1000],
        "artist": labels["player"] or labels["speaker"] or "",
        "album": session_id,
        "track": clip.clip_id,
        "comment": comment,
    }
    return {k: v for k, v in tags.items() if v}


def _write_clips(
    session: SessionState, recording: Path, directory: Path, clips: list[Clip], fmt: str, progress: bool
) -> SnippetExport:
    journal = directory / JOURNAL
    known = {r["clip_id"]: r for r in _read_jsonl(directory / "manifest.jsonl")}
    known.update({r["clip_id"]: r for r in _read_jsonl(journal)})
    for leftover in directory.glob(".*.part"):
        leftover.unlink()
    result = SnippetExport(directory, pd.DataFrame(columns=list(MANIFEST_COLUMNS)))
    rows = []
    reader: SpanReader | None = None
    try:
        with journal.open("a", encoding="utf-8") as log:
            for clip in tqdm(clips, desc="snippets", unit="clip", disable=not progress):
                previous = known.get(clip.clip_id)
                target = directory / clip.file
                if (
                    previous
                    and previous.get("fingerprint") == clip.fingerprint
                    and _sha256(target) == previous["sha256"]
                ):
                    rows.append(previous)
                    result.kept.append(clip.file)
                    continue
                reader = reader or SpanReader(recording)
                digest = _encode(reader, clip, fmt, target, session.session_id)
                row = _manifest_row(clip, digest)
                log.write(json.dumps(row, ensure_ascii=False) + "\n")
                log.flush()
                rows.append(row)
                result.written.append(clip.file)
    finally:
        if reader is not None:
            reader.close()
    planned = {clip.file for clip in clips}
    for record in known.values():
        stale = directory / record["file"]
        if record["file"] not in planned and stale.is_file():
            stale.unlink()
            result.removed.append(record["file"])
    result.manifest = pd.DataFrame(rows, columns=[*MANIFEST_COLUMNS, "fingerprint"])
    _write_manifests(directory, rows)
    journal.unlink()
    return result


def _manifest_row(clip: Clip, digest: str) -> dict[str, Any]:
    start, end = clip.spans[0][0], max(e for _, e in clip.spans)
    duration = sum(e - s for s, e in clip.spans) + GAP_SECONDS * (len(clip.spans) - 1)
    return {
        "clip_id": clip.clip_id,
        "file": clip.file,
        "segment_ids": clip.segment_ids,
        "start": start,
        "end": end,
        "duration": round(duration, 3),
        **clip.labels,
        "sha256": digest,
        "override_seq": clip.override_seq,
        "fingerprint": clip.fingerprint,
    }


def _encode(reader: SpanReader, clip: Clip, fmt: str, target: Path, session_id: str) -> str:
    """Encode ``clip`` to ``target`` (through a temporary file); its SHA-256."""
    container_format, codec, fixed_rate = FORMATS[fmt]
    layout = "mono" if reader.channels == 1 else "stereo"
    rate = fixed_rate or reader.sample_rate
    temporary = target.with_name(f".{target.name}.part")
    with av.open(str(temporary), "w", format=container_format, options={"fflags": "+bitexact"}) as output:
        stream = output.add_stream(codec, rate=rate, layout=layout)
        tags = _tags(clip, session_id)
        output.metadata.update(tags)
        stream.metadata.update(tags)
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=rate)
        fifo = av.AudioFifo()
        gap = np.zeros((reader.channels, round(GAP_SECONDS * reader.sample_rate)), dtype=np.float32)
        for number, (start, end) in enumerate(clip.spans):
            pieces = [gap, reader.read(start, end)] if number else [reader.read(start, end)]
            for samples in pieces:
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(samples[: 2 if layout == "stereo" else 1]), format="fltp", layout=layout
                )
                frame.sample_rate = reader.sample_rate
                for converted in resampler.resample(frame):
                    fifo.write(converted)
                _drain(fifo, stream, output, partial=False)
        for converted in resampler.resample(None):
            fifo.write(converted)
        _drain(fifo, stream, output, partial=True)
        for packet in stream.encode(None):
            output.mux(packet)
    digest = _sha256(temporary)
    temporary.replace(target)
    return digest


def _drain(fifo: av.AudioFifo, stream: Any, output: Any, *, partial: bool) -> None:
    size = stream.codec_context.frame_size or 4096
    while (frame := fifo.read(size)) is not None or (partial and (frame := fifo.read(size, partial=True))):
        for packet in stream.encode(frame):
            output.mux(packet)


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line torn by a kill: everything after it is redone
    return rows


def _write_manifests(directory: Path, rows: list[dict[str, Any]]) -> None:
    jsonl = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(MANIFEST_COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row | {"segment_ids": " ".join(row["segment_ids"])})
    for name, content in (("manifest.jsonl", jsonl), ("manifest.csv", text.getvalue())):
        temporary = directory / f".{name}.part"
        temporary.write_text(content, encoding="utf-8")
        temporary.replace(directory / name)


def _zip(directory: Path, manifest: pd.DataFrame) -> Path:
    """``<directory>.zip`` with the clips and manifests; same contents, same bytes."""
    archive = directory.with_suffix(".zip")
    temporary = archive.with_name(f".{archive.name}.part")
    with zipfile.ZipFile(temporary, "w") as bundle:
        for name in ["manifest.jsonl", "manifest.csv", *sorted(manifest["file"])]:
            info = zipfile.ZipInfo(f"{directory.name}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if name.startswith("manifest") else zipfile.ZIP_STORED
            bundle.writestr(info, (directory / name).read_bytes())
    temporary.replace(archive)
    return archive
