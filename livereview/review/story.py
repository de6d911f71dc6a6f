"""A session's scenes and knowledge base, built from its merged view and kept current.

:func:`session_scenes` and :func:`session_knowledge` run the stages
(:mod:`livereview.stages.scenes`, :mod:`livereview.stages.knowledge`) on the merged view
and keep the result in the session directory (``scenes/scenes.json``,
``knowledge/knowledge.json``) with the :class:`~livereview.review.artifacts.Stamp` it was
built from. Asked again, they return the kept result while the session has not changed;
after a correction or a rerun they rebuild, and the knowledge base re-parses only the
lines whose text changed (spaCy's parses are kept by text in ``knowledge/parses.json``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from livereview.review.artifacts import Stamp, current_stamp, record_artifact
from livereview.review.view import require_view_columns
from livereview.stages.knowledge import KNOWLEDGE_INPUT_COLUMNS, Knowledge, build_knowledge
from livereview.stages.knowledge.llm import LLMKnowledge
from livereview.stages.scenes import SCENE_COLUMNS, SCENE_INPUT_COLUMNS, SceneOptions, find_scenes, llm_summarizer

if TYPE_CHECKING:
    from livereview.review.state import SessionState

SCENES_FILE = Path("scenes") / "scenes.json"
KNOWLEDGE_FILE = Path("knowledge") / "knowledge.json"
PARSES_FILE = Path("knowledge") / "parses.json"


def session_scenes(
    session: SessionState,
    view: pd.DataFrame,
    *,
    options: SceneOptions | None = None,
    summarizer: str | None = None,
    rebuild: bool = False,
) -> pd.DataFrame:
    """The session's scenes (see :func:`livereview.stages.scenes.find_scenes`), kept current.

    Parameters
    ----------
    session : SessionState
    view : pandas.DataFrame
        Its merged view (:meth:`Session.view`).
    options : SceneOptions, optional
    summarizer : str, optional
        ``"llm:<base_url>:<model>"`` for summaries by an OpenAI-compatible server;
        extractive summaries otherwise.
    rebuild : bool
        Build again even if the kept scenes are current.
    """
    options = options or SceneOptions()
    settings = {"options": asdict(options), "summarizer": summarizer}
    path = session.directory / SCENES_FILE
    stamp = current_stamp(session)
    kept = _kept(path, stamp, settings) if not rebuild else None
    if kept is not None:
        return _scene_frame(kept["scenes"])
    require_view_columns(view, SCENE_INPUT_COLUMNS, consumer="scenes")
    scenes = find_scenes(
        view,
        game_master=game_master_speakers(session, view),
        options=options,
        summarizer=llm_summarizer(summarizer) if summarizer else None,
    )
    records = json.loads(scenes.to_json(orient="records"))
    _keep(path, {"built_from": stamp.to_dict(), "settings": settings, "scenes": records})
    record_artifact(session, "scenes", "scenes", path, stamp)
    return scenes


def session_knowledge(
    session: SessionState,
    view: pd.DataFrame,
    *,
    backend: str = "offline",
    include_ooc: bool = False,
    rebuild: bool = False,
) -> Knowledge:
    """The session's knowledge base (entities, mentions, quest and hook candidates), kept current.

    Parameters
    ----------
    session : SessionState
    view : pandas.DataFrame
        Its merged view (:meth:`Session.view`).
    backend : str
        ``"offline"`` (spaCy, the party, corrections, MiniLM) or ``"llm:<base_url>:<model>"``.
    include_ooc : bool
        Keep entities named only out of character.
    rebuild : bool
        Build again even if the kept knowledge base is current.
    """
    settings = {"backend": backend, "include_ooc": include_ooc}
    path = session.directory / KNOWLEDGE_FILE
    stamp = current_stamp(session)
    kept = _kept(path, stamp, settings) if not rebuild else None
    if kept is not None:
        return Knowledge.from_dict(kept)
    require_view_columns(view, KNOWLEDGE_INPUT_COLUMNS, consumer="knowledge")
    knowledge = knowledge_of_frame(
        view,
        session.party,
        backend=backend,
        npc_names=corrected_npc_names(session),
        speaker_names=session.speaker_map,
        include_ooc=include_ooc,
        parses=session.directory / PARSES_FILE,
    )
    knowledge.built_from = {**knowledge.built_from, **stamp.to_dict(), "session_id": session.session_id}
    _keep(path, {**knowledge.to_dict(), "settings": settings})
    record_artifact(session, "knowledge", "knowledge", path, stamp)
    return knowledge


def knowledge_of_frame(
    frame: pd.DataFrame,
    party: Any,
    *,
    backend: str = "offline",
    npc_names: set[str] | None = None,
    speaker_names: dict[str, str] | None = None,
    include_ooc: bool = False,
    parses: Path | None = None,
) -> Knowledge:
    """A knowledge base of any segment table (a session's view or a transcript) with the chosen backend.

    ``parses`` is a JSON file of spaCy parses by text, read first and written back.
    """
    if backend.startswith("llm:"):
        return LLMKnowledge.from_spec(backend)(frame, party, include_ooc=include_ooc)
    if backend != "offline":
        msg = f"unknown knowledge backend {backend!r}; use 'offline' or 'llm:<base_url>:<model>'"
        raise ValueError(msg)
    cache = json.loads(parses.read_text(encoding="utf-8")) if parses is not None and parses.exists() else {}
    knowledge = build_knowledge(
        frame,
        party=party,
        npc_names=npc_names or set(),
        speaker_names=speaker_names,
        cache=cache,
        include_ooc=include_ooc,
    )
    if parses is not None:
        _keep(parses, cache)
    return knowledge


def corrected_npc_names(session: SessionState) -> set[str]:
    """NPC names operators gave as character tags (not the party's characters, DM or NPC)."""
    current = session.overrides()
    if current.empty:
        return set()
    tags = current.loc[current["field"] == "character_tag", "value"]
    party = session.party
    party_names = {n.casefold() for n in party.names()} if party else set()
    return {
        t.strip()
        for t in tags
        if isinstance(t, str) and t.strip() and t.strip().casefold() not in {"dm", "npc", *party_names}
    }


def game_master_speakers(session: SessionState, view: pd.DataFrame) -> list[str]:
    """Speaker ids of the game master in ``view``.

    The party's game master and the diarized speakers mapped to them; when no speaker of
    the view is known to be the game master, the one who speaks longest (game masters
    narrate and voice every NPC). Empty without a party.
    """
    party = session.party
    if party is None:
        return []
    known = [party.game_master, *(s for s, p in session.speaker_map.items() if party.is_game_master(p))]
    speakers = view["speaker_id"].dropna()
    if speakers.isin(known).any() or speakers.empty:
        return known
    speech = (view["end"] - view["start"]).groupby(view["speaker_id"]).sum()
    return [*known, str(speech.idxmax())]


def _kept(path: Path, stamp: Stamp, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The kept artifact at ``path`` when it was built from ``stamp`` with ``settings``."""
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    built = data.get("built_from", {})
    same = all(built.get(k) == v for k, v in stamp.to_dict().items())
    return data if same and data.get("settings") == settings else None


def _keep(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.part")
    temporary.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    temporary.replace(path)


def _scene_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=list(SCENE_COLUMNS))
    for column in ("segment_ids", "speakers", "characters"):
        frame[column] = [tuple(v) for v in frame[column]]
    return frame
