"""A campaign: the sessions of one game in one folder, their entities merged across sessions.

:class:`Campaign` opens every session directory under a folder (each with its
``metadata.json``), builds or reuses each session's knowledge base and scenes (kept
current, see :mod:`livereview.review.story`), and merges the entities of all sessions with
the alias rules of :func:`livereview.stages.knowledge.aliases.cluster_forms` ("Tom" of the
first session is "old Tom" of the third). It gives:

- :attr:`Campaign.entities`: one row per campaign entity with its aliases, the sessions it
  appears in, its mentions, and its first and last mention (session and time);
- :attr:`Campaign.appearances`: one row per entity and session;
- :attr:`Campaign.digest`: one row per session: its scenes, who played, its in-character
  share and the entities it introduced;

and writes them to ``campaign.json`` in the folder.

Usage
-----
>>> campaign = livereview.Campaign("output/")         # doctest: +SKIP
>>> campaign.entities[["name", "type", "sessions"]]   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from livereview.review.session import Session
from livereview.stages.knowledge import Knowledge
from livereview.stages.knowledge.aliases import Form, cluster_forms, normalize
from livereview.stages.knowledge.schema import PC

#: Columns of :attr:`Campaign.entities`.
CAMPAIGN_ENTITY_COLUMNS = (
    "entity_id",
    "name",
    "type",
    "aliases",
    "sessions",
    "mentions",
    "first_session",
    "first_time",
    "last_session",
    "last_time",
)
#: Columns of :attr:`Campaign.appearances`.
APPEARANCE_COLUMNS = ("entity_id", "session_id", "session_entity_id", "mentions", "first_time", "last_time")
#: Columns of :attr:`Campaign.digest`.
DIGEST_COLUMNS = (
    "session_id",
    "created",
    "duration",
    "scenes",
    "play_scenes",
    "players",
    "ic_share",
    "entities",
    "new_entities",
)
CAMPAIGN_FILE = "campaign.json"


class Campaign:
    """The sessions under ``directory``, read together.

    Sessions are named by their directory (normally their session id).

    Parameters
    ----------
    directory : path
        A folder whose sub-folders are session directories (``output/`` after several runs).
    backend : str
        Knowledge backend of each session (see :meth:`Session.knowledge`).
    progress : bool
        Show a progress bar over the sessions.

    Raises
    ------
    FileNotFoundError
        The folder does not exist or holds no session directory.
    """

    def __init__(self, directory: os.PathLike[str] | str, *, backend: str = "offline", progress: bool = True) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            msg = f"campaign folder {self.directory} not found"
            raise FileNotFoundError(msg)
        found = sorted(p.parent for p in self.directory.glob("*/metadata.json"))
        if not found:
            msg = f"{self.directory} holds no session directory (a sub-folder with metadata.json); run sessions into it"
            raise FileNotFoundError(msg)
        self.backend = backend
        self.sessions: list[str] = []
        self._knowledge: dict[str, Knowledge] = {}
        digests = []
        from tqdm.auto import tqdm

        for path in tqdm(found, desc="sessions", unit="session", disable=not progress):
            session = Session.open(path)
            try:
                knowledge = session.knowledge(backend=backend)
                digests.append(_digest(session, knowledge))
            finally:
                session.close()
            self.sessions.append(path.name)
            self._knowledge[path.name] = knowledge
        digest = pd.DataFrame(digests, columns=[c for c in DIGEST_COLUMNS if c != "new_entities"])
        digest = digest.sort_values(["created", "session_id"], kind="stable", ignore_index=True)
        self.sessions = list(digest["session_id"])
        self.entities, self.appearances = self._merge()
        firsts = self.entities.groupby("first_session")["name"].agg(tuple)
        digest["new_entities"] = [firsts.get(s, ()) for s in digest["session_id"]]
        self.digest = digest[list(DIGEST_COLUMNS)]
        self.write()

    def knowledge(self, session_id: str) -> Knowledge:
        """One session's knowledge base."""
        return self._knowledge[session_id]

    def write(self) -> Path:
        """Write ``campaign.json`` (entities, appearances, digest) into the folder; its path."""
        data = {
            "sessions": self.sessions,
            "entities": _records(self.entities),
            "appearances": _records(self.appearances),
            "digest": _records(self.digest),
        }
        path = self.directory / CAMPAIGN_FILE
        temporary = path.with_name(f".{path.name}.part")
        temporary.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        temporary.replace(path)
        return path

    def _merge(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Campaign entities from every session's entities: their names and aliases clustered together."""
        forms: dict[str, Form] = {}
        links: list[tuple[str, str]] = []
        owners: list[tuple[str, pd.Series, str]] = []  # (session, entity row, key of its name)
        for session_id in self.sessions:
            for _, row in self._knowledge[session_id].entities.iterrows():
                keys = [normalize(n) for n in (row["name"], *row["aliases"])]
                for key, surface in zip(keys, (row["name"], *row["aliases"]), strict=True):
                    form = forms.setdefault(key, Form(key, cued=True))  # typed by its session
                    form.surfaces[surface] += int(row["mentions"]) if surface == row["name"] else 1
                    form.votes[row["type"]] += int(row["mentions"])
                    if row["type"] == PC:
                        form.pinned = keys[0]
                    links.append((keys[0], key))
                owners.append((session_id, row, keys[0]))
        ordered = list(forms)
        index = {key: i for i, key in enumerate(ordered)}
        clusters = cluster_forms([forms[k] for k in ordered], links=[(index[a], index[b]) for a, b in links if a != b])
        order = {s: i for i, s in enumerate(self.sessions)}
        grouped: dict[int, list[tuple[str, pd.Series]]] = {}
        for session_id, row, key in owners:
            grouped.setdefault(clusters[index[key]], []).append((session_id, row))
        entity_rows, appearance_rows, used = [], [], set()
        for members in grouped.values():
            members.sort(key=lambda m: (order[m[0]], m[1]["first_time"]))
            votes = Counter()
            names = Counter()
            for _, row in members:
                votes[row["type"]] += int(row["mentions"])
                names[row["name"]] += int(row["mentions"])
            kind = PC if PC in votes else votes.most_common(1)[0][0]
            name = max(names.items(), key=lambda item: (item[1], len(item[0])))[0]
            entity_id = _unique_id(f"{kind.lower()}:{normalize(name).replace(' ', '-')}", used)
            aliases = {a for _, row in members for a in (row["name"], *row["aliases"])} - {name}
            last = max(members, key=lambda m: (order[m[0]], m[1]["last_time"]))
            entity_rows.append(
                {
                    "entity_id": entity_id,
                    "name": name,
                    "type": kind,
                    "aliases": tuple(sorted(aliases, key=str.casefold)),
                    "sessions": tuple(dict.fromkeys(s for s, _ in members)),
                    "mentions": sum(int(row["mentions"]) for _, row in members),
                    "first_session": members[0][0],
                    "first_time": float(members[0][1]["first_time"]),
                    "last_session": last[0],
                    "last_time": float(last[1]["last_time"]),
                }
            )
            appearance_rows += [
                {
                    "entity_id": entity_id,
                    "session_id": session_id,
                    "session_entity_id": row["entity_id"],
                    "mentions": int(row["mentions"]),
                    "first_time": float(row["first_time"]),
                    "last_time": float(row["last_time"]),
                }
                for session_id, row in members
            ]
        entities = pd.DataFrame(entity_rows, columns=list(CAMPAIGN_ENTITY_COLUMNS))
        entities = entities.sort_values(["type", "mentions", "name"], ascending=[True, False, True], ignore_index=True)
        return entities, pd.DataFrame(appearance_rows, columns=list(APPEARANCE_COLUMNS))


def _digest(session: Session, knowledge: Knowledge) -> dict[str, Any]:
    """One session's row of the digest; sessions are named by their directory."""
    scenes = session.scenes()
    view = session.view()
    durations = (view["end"] - view["start"]).clip(lower=0.0)
    weight = view["ic_ooc"].map({"IC": 1.0, "MIXED": 0.5}).fillna(0.0)
    players = [session.speaker_map.get(s, s) for s in view["speaker_id"].dropna().unique()]
    return {
        "session_id": session.directory.name,
        "created": session.metadata.get("created", ""),
        "duration": float(session.metadata["audio"]["duration"]),
        "scenes": len(scenes),
        "play_scenes": int((scenes["kind"] == "play").sum()),
        "players": tuple(sorted(players)),
        "ic_share": round(float((durations * weight).sum() / durations.sum()), 3) if durations.sum() else 0.0,
        "entities": len(knowledge.entities),
    }


def _unique_id(entity_id: str, used: set[str]) -> str:
    candidate, number = entity_id, 2
    while candidate in used:
        candidate, number = f"{entity_id}-{number}", number + 1
    used.add(candidate)
    return candidate


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))
