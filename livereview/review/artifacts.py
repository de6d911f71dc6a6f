"""What each downstream artifact of a session was built from, and whether it is still current.

Snippets, scenes and knowledge are built from the merged view: the base results, the
reruns committed so far and the corrections in effect. Each records a :class:`Stamp` of
those (the override ``seq``, the last ``rerun_id`` and a digest of ``segments.jsonl``) in
``artifacts.json`` of the session directory when it is built; :func:`stale_artifacts`
compares every record with the session as it is now.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from filelock import FileLock

if TYPE_CHECKING:
    from livereview.review.state import SessionState

#: The registry of a session's artifacts, in its directory.
REGISTRY = "artifacts.json"
#: Columns of :func:`stale_artifacts`.
STALE_COLUMNS = (
    "artifact",
    "kind",
    "path",
    "stale",
    "reason",
    "override_seq",
    "rerun_id",
    "current_override_seq",
    "current_rerun_id",
)


@dataclass(frozen=True)
class Stamp:
    """The state of a session an artifact is built from.

    Attributes
    ----------
    override_seq : int
        The last correction in the override log (0 before any).
    rerun_id : str or None
        The last committed rerun.
    results : str
        Digest of ``segments.jsonl`` (changes when a run adds chunks or revises speakers).
    """

    override_seq: int
    rerun_id: str | None
    results: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stamp:
        return cls(int(data["override_seq"]), data.get("rerun_id"), str(data["results"]))

    def differences(self, now: Stamp) -> list[str]:
        """What changed between this stamp and ``now``, in words."""
        reasons = []
        if now.override_seq != self.override_seq:
            reasons.append(f"corrections since seq {self.override_seq} (now {now.override_seq})")
        if now.rerun_id != self.rerun_id:
            reasons.append(f"rerun {now.rerun_id} since {self.rerun_id or 'none'}")
        if now.results != self.results:
            reasons.append("base results changed")
        return reasons


def current_stamp(session: SessionState) -> Stamp:
    """The session's state now."""
    reruns = session.rerun_log.reruns()
    digest = hashlib.sha1()
    segments = session.paths.segments
    if segments.exists():
        with segments.open("rb") as stream:
            while block := stream.read(1 << 20):
                digest.update(block)
    return Stamp(session.override_seq, reruns[-1].rerun_id if reruns else None, digest.hexdigest()[:16])


def record_artifact(session: SessionState, name: str, kind: str, path: Path, stamp: Stamp, **details: Any) -> None:
    """Register (or replace) artifact ``name`` as built from ``stamp``, atomically."""
    registry = session.directory / REGISTRY
    with FileLock(f"{registry}.lock"):
        records = _read(registry)
        records[name] = {
            "kind": kind,
            "path": os.path.relpath(path, session.directory),
            "built_from": stamp.to_dict(),
            **details,
        }
        temporary = registry.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        temporary.replace(registry)


def artifact_records(session: SessionState) -> dict[str, dict[str, Any]]:
    """Every registered artifact: name -> record."""
    return _read(session.directory / REGISTRY)


def stale_artifacts(session: SessionState) -> pd.DataFrame:
    """One row per registered artifact: whether it is out of date, and why.

    Returns
    -------
    pandas.DataFrame
        :data:`STALE_COLUMNS`; ``stale`` is True when corrections, a rerun or new base
        results came after the artifact was built, or its files are gone.
    """
    now = current_stamp(session)
    rows = []
    for name, record in sorted(artifact_records(session).items()):
        built = Stamp.from_dict(record["built_from"])
        reasons = built.differences(now)
        if not (session.directory / record["path"]).exists():
            reasons.append("its files are gone")
        rows.append(
            {
                "artifact": name,
                "kind": record["kind"],
                "path": record["path"],
                "stale": bool(reasons),
                "reason": "; ".join(reasons),
                "override_seq": built.override_seq,
                "rerun_id": built.rerun_id,
                "current_override_seq": now.override_seq,
                "current_rerun_id": now.rerun_id,
            }
        )
    return pd.DataFrame(rows, columns=list(STALE_COLUMNS))


def _read(registry: Path) -> dict[str, dict[str, Any]]:
    if not registry.exists():
        return {}
    return json.loads(registry.read_text(encoding="utf-8"))
