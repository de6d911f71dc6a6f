"""An opened session directory: its stores, what they hold, and the operators' corrections.

:class:`SessionState` opens the stores of one directory together (results, overrides,
rerun history, event log) with the session's live emitter, and reads them. The run
(:mod:`livereview.review.run`) and the reruns (:mod:`livereview.review.reruns`) work on
it; :class:`~livereview.review.session.Session` is the facade users hold.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from livereview.core.events import CHUNK_COMPLETED, SUMMARY, UPDATE, LiveEvent
from livereview.core.jsonl import JsonlTail
from livereview.core.options import RunOptions
from livereview.core.party import Npc, Party, load_party
from livereview.core.roles import EDITOR
from livereview.core.segments import Segment, segments_to_frame
from livereview.core.turns import ChunkSpeakers
from livereview.live.emitter import EventEmitter
from livereview.live.metrics import EVENT_LOG_CHECKPOINT, SessionMonitor
from livereview.review.locate import locate_party, locate_recording
from livereview.review.view import corrected_turns, merged_view
from livereview.stages.classify.frame import classification_frame
from livereview.stages.classify.labels import UNNAMED_TAGS
from livereview.store.event_log import EventSequence, JsonlEventLog, read_event_log
from livereview.store.layout import SessionPaths
from livereview.store.override_feed import OverrideFeed
from livereview.store.overrides import EditContext, OverrideRecord, OverrideStore
from livereview.store.rerun_log import RerunLog
from livereview.store.results import SessionStore
from livereview.store.writer import WriterLock

logger = logging.getLogger(__name__)

#: Columns of :meth:`SessionState.segment_spans`: the segment table without word timings.
SPAN_COLUMNS = ("segment_id", "chunk_id", "start", "end", "speaker_id", "character_tag", "ic_ooc", "text")


class SessionState:
    """The stores of one session directory, opened together, and reads over them.

    Parameters
    ----------
    store : SessionStore
        The directory's results, already created or loaded.
    options : RunOptions, optional
        The run's options as given (a classifier object stays an object); read from
        ``metadata.json`` otherwise.
    audio : path, optional
        Where the recording is now, when it moved (see :mod:`livereview.review.locate`).
    """

    def __init__(
        self, store: SessionStore, options: RunOptions | None = None, *, audio: os.PathLike[str] | str | None = None
    ) -> None:
        self._store = store
        self.paths: SessionPaths = store.paths
        self.directory: Path = store.directory
        self.options = options or RunOptions.from_config(store.metadata["config"])
        self._audio_path = locate_recording(store.metadata, self.directory, audio)
        self.session_id: str = store.metadata["session_id"]
        self.rerun_log = RerunLog(self.directory)
        self._party: Party | None = None
        self._party_read = False
        self._run_thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.events = EventEmitter(
            self.session_id, sequence=EventSequence(self.paths.event_sequence, self.paths.events)
        )
        self._event_log = JsonlEventLog(self.paths.events)
        self.events.subscribe(self._event_log, name="event-log", maxsize=100_000, relayed=False)
        self._log_follower: LogFollower | None = None
        checkpoint = store.read_metrics().get(EVENT_LOG_CHECKPOINT)
        self.monitor = SessionMonitor(self.session_id, self.paths.events, checkpoint)
        self._overrides = OverrideStore(self.directory, self.session_id, self._edit_context)
        # Announces every correction in the log once, this session's at once and others' when polled.
        self.override_feed = OverrideFeed(
            self._overrides.log_path, self._announce_overrides, start_seq=self._overrides.seq
        )
        self._overrides.subscribe(lambda _records: self.override_feed.poll())

    # -- what the directory holds ---------------------------------------------------------------

    @property
    def metadata(self) -> dict[str, Any]:
        """``metadata.json``: the recording, options, models and run status."""
        return self._store.metadata

    @property
    def audio_path(self) -> Path:
        """The recording, where it is now."""
        return self._audio_path

    @property
    def status(self) -> str:
        return self.metadata.get("status", "created")

    @property
    def config(self) -> dict[str, Any]:
        return self.metadata["config"]

    @property
    def segments(self) -> pd.DataFrame:
        """Base results, one row per segment, ordered by start time."""
        return segments_to_frame(self.segment_list())

    def segment_spans(self) -> pd.DataFrame:
        """A light segment table: ids, chunks, times and the overridable fields, without words.

        On long sessions it is much cheaper than :attr:`segments` (20,000 segments: ~20 ms
        instead of ~700 ms).
        """
        segments = self.segment_list()
        return pd.DataFrame(
            {name: [getattr(s, name) for s in segments] for name in SPAN_COLUMNS},
            index=pd.Index([s.segment_id for s in segments]),
        )

    def segment_list(self) -> list[Segment]:
        """Base segments as objects, ordered by start time (a snapshot)."""
        return self._store.segment_list()

    @property
    def completed_chunks(self) -> set[int]:
        """Ids of the chunks every stage has finished (their segments can be edited)."""
        return {record["chunk_id"] for record in self._store.chunk_records()}

    @property
    def chunks(self) -> pd.DataFrame:
        """Completed chunks with their spans and stage timings."""
        return pd.DataFrame(self._store.chunk_records())

    def speaker_chunks(self) -> list[ChunkSpeakers]:
        """Each completed chunk's diarization (turns, embeddings, session speakers), in order."""
        return self._store.speaker_chunks()

    def diarization(self, *, corrected: bool = True) -> pd.DataFrame:
        """Speaker turns found so far: ``start``, ``end``, ``speaker_id`` (session labels).

        With ``corrected`` (the default) the operators' speaker corrections are laid over
        them and every segment with a speaker is covered (:func:`~livereview.review.view.corrected_turns`);
        ``corrected=False`` gives the turns as diarized.
        """
        found = [turn for chunk in self._store.speaker_chunks() for turn in chunk.speaker_turns()]
        turns = pd.DataFrame(found, columns=["start", "end", "speaker_id"]).sort_values("start", ignore_index=True)
        return corrected_turns(turns, self.segments, self.corrected_values()) if corrected else turns

    def event_log(self) -> list[Any]:
        """Every live event written so far, in order."""
        return list(read_event_log(self.paths.events))

    @property
    def running(self) -> bool:
        """Whether this process is running the session in the background."""
        return self._run_thread is not None and self._run_thread.is_alive()

    # -- party and speakers ---------------------------------------------------------------------

    @property
    def party(self) -> Party | None:
        """The party configuration, when the session has a party file (its copy in the session directory)."""
        if not self._party_read:
            path = locate_party(self.metadata, self.directory, self.options.party)
            self._party = load_party(path) if path is not None else None
            self._party_read = True
        return self._party

    def classification_party(self) -> Party | None:
        """The party the classifier gets: the party file's, with every NPC this session has named so far.

        NPC names the classifier gave to segments and names operators set as a character
        tag (that are not a player character) join the party's NPCs, so a name heard once
        is known for the rest of the session and in reruns. ``None`` without a party file.
        """
        party = self.party
        if party is None:
            return None
        taken = {name.casefold() for name in (*party.names(), *party.npc_names())}
        named = [s.character_tag for s in self.segment_list() if s.segment_type == "NPC_DIALOGUE"]
        named += [values.get("character_tag") for values in self.corrected_values().values()]
        new: dict[str, str] = {}
        for name in named:
            if isinstance(name, str) and name.strip() and name not in UNNAMED_TAGS and name.casefold() not in taken:
                new.setdefault(name.casefold(), name.strip())
        return replace(party, npcs=(*party.npcs, *(Npc(name) for name in new.values()))) if new else party

    @property
    def speaker_map(self) -> dict[str, str]:
        """Diarized ``speaker_id`` -> player."""
        return self._store.speaker_map()

    def set_speaker_map(self, mapping: dict[str, str]) -> None:
        """Say which player each diarized speaker is; kept in ``speaker_map.json``."""
        self._store.set_speaker_map(self._store.speaker_map() | mapping)

    @property
    def known_speakers(self) -> set[str]:
        """Speakers a correction may name without ``allow_new_speaker``.

        Diarized labels, the players of the speaker mapping and party, and speakers
        operators have already added.
        """
        known = {s.speaker_id for s in self.segment_list() if s.speaker_id}
        known |= {speaker for chunk in self._store.speaker_chunks() for speaker in chunk.speakers}
        known |= set(self.speaker_map.values())
        party = self.party
        if party is not None:
            known |= {party.game_master, *(character.player for character in party.characters)}
        known |= {v["speaker_id"] for v in self._overrides.current_values().values() if "speaker_id" in v}
        return known

    def classification_frame(self, segments: list[Segment]) -> pd.DataFrame:
        """The rows a classifier sees for ``segments``: context, corrections and speaker mapping applied."""
        return classification_frame(
            segments, self.segment_list(), self.corrected_values(), self.speaker_map, self.party
        )

    # -- operator corrections -------------------------------------------------------------------

    def set_override(
        self,
        segment_id: str,
        *,
        user: str,
        reason: str | None = None,
        role: str = EDITOR,
        allow_new_speaker: bool = False,
        **fields: Any,
    ) -> list[OverrideRecord]:
        """Correct fields of one segment (``speaker_id``, ``character_tag``, ``ic_ooc``, ``text``,
        ``confidence_flag``); on disk before this returns."""
        return self._overrides.set(
            segment_id, user=user, role=role, reason=reason, allow_new_speaker=allow_new_speaker, **fields
        )

    def apply_overrides(
        self,
        frame: pd.DataFrame,
        *,
        user: str,
        confirm: bool = False,
        reason: str | None = None,
        role: str = EDITOR,
        allow_new_speaker: bool = False,
    ) -> str:
        """Apply a batch (one row per segment, one column per field), all or nothing; returns its id.

        Without ``confirm=True`` nothing is written and the error says what would change.
        """
        return self._overrides.apply_batch(
            frame, user=user, confirm=confirm, role=role, reason=reason, allow_new_speaker=allow_new_speaker
        )

    def undo_last_batch(self, user: str, *, role: str = EDITOR) -> str | None:
        """Revert ``user``'s last applied batch (appends revert records); its id, or None."""
        return self._overrides.undo_last_batch(user, role=role)

    def override_log(self) -> pd.DataFrame:
        """Every correction ever made, in order (the audit trail)."""
        return self._overrides.log()

    def overrides(self) -> pd.DataFrame:
        """Corrections in effect: one row per segment and field, with the model's value."""
        return self._overrides.current()

    def corrected_values(self) -> dict[str, dict[str, Any]]:
        """Operator corrections in effect: segment id -> field -> value."""
        return self._overrides.current_values()

    @property
    def override_seq(self) -> int:
        """The ``seq`` of the last correction in the override log (0 before any)."""
        self._overrides.refresh()
        return self._overrides.seq

    def watch_overrides(self, interval: float = 0.5) -> OverrideFeed:
        """Also announce corrections other sessions or kernels write, polling every ``interval`` s.

        A correction that replaces another user's carries ``data["conflicts"]`` in its
        ``update`` event. Stop with ``session.override_feed.stop()``.
        """
        return self.override_feed.watch(interval)

    def _edit_context(self) -> EditContext:
        return EditContext(self.segment_spans(), self.completed_chunks, self.known_speakers)

    def _announce_overrides(self, records: list[OverrideRecord], data: dict[str, Any] | None = None) -> None:
        """Tell live subscribers about acknowledged corrections: the corrected rows as they now read."""
        touched = [self._store.segment(s) for s in dict.fromkeys(r.segment_id for r in records)]
        frame = segments_to_frame([s for s in touched if s is not None])  # only the touched rows: cheap
        rows = merged_view(frame, self.corrected_values()).drop(columns=["words", "overridden"])
        self.events.emit_segments(
            UPDATE,
            json.loads(rows.to_json(orient="records")),
            stage="override",
            status="edited",
            data={"user": records[0].user, "batch_id": records[0].batch_id, "op": records[0].op} | (data or {}),
        )

    # -- a session another process writes ------------------------------------------------------

    def written_elsewhere(self) -> bool:
        """Whether another process (a batch worker, another notebook) is running or rerunning the session."""
        holder = WriterLock(self.directory).holder()
        here = holder is not None and (holder.get("pid"), holder.get("host")) == (os.getpid(), socket.gethostname())
        return holder is not None and not here

    def follow_log(self, interval: float = 0.25) -> LogFollower:
        """Relay the events another process writes to ``events.jsonl`` to this session's subscribers.

        The results it commits are read again as its chunks complete, so corrections and the
        review see them. Stop with ``follower.stop()`` (closing the session stops it too).
        """
        if self._log_follower is None or not self._log_follower.running:
            self._log_follower = LogFollower(self, interval)
        return self._log_follower

    # -- closing --------------------------------------------------------------------------------

    def close(self) -> None:
        """Deliver pending live events and release the event log and override store."""
        if self._log_follower is not None:
            self._log_follower.stop()
        self.override_feed.stop()
        self.events.close()
        self._event_log.close()
        self._overrides.close()

    def __repr__(self) -> str:
        return (
            f"<Session {self.session_id!r} {self.status}: {self._store.segment_count()} segments, "
            f"{len(self._store.chunk_records())} chunks>"
        )


class LogFollower:
    """Tails a session's ``events.jsonl`` on a thread, relaying what another process writes."""

    def __init__(self, session: SessionState, interval: float) -> None:
        self.session = session
        self.interval = interval
        self._tail = JsonlTail(session.paths.events)
        self._tail.start_at_end()
        self._stop = threading.Event()
        name = f"livereview-follow-{session.session_id}"
        self._thread = threading.Thread(target=self._follow, name=name, daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(5)

    def _follow(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                records = self._tail.read()
            except OSError:
                logger.exception("following %s failed; retrying", self._tail.path)
                continue
            for record in records:
                event = LiveEvent.from_dict(record)
                if event.kind in (CHUNK_COMPLETED, SUMMARY) or event.stage == "rerun":
                    self.session._store.refresh()  # the other process committed results: read them
                self.session.events.relay(event)
