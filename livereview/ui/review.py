"""Live review of a recorded session in JupyterLab: status, filters, segment grid, timeline, playback.

:func:`review` returns one displayable widget that follows a session while it runs
(or after) and lets editors correct it:

- the **grid** (:class:`ReviewGrid`, an anywidget whose front end is
  ``widgets/review.js``) renders only the rows in view, so a four-hour session
  (20,000 segments) opens fast. New and changed rows travel as small custom
  messages (``{"kind": "append" | "patch", "rows": [...]}``), at most four a second;
  every view asks for a ``snapshot`` when it renders, so a reloaded page or a second
  output shows the same rows (a long session first sends the rows the view shows
  first, then all of them);
- the **timeline** (:class:`livereview.ui.timeline.Timeline`, bqplot) shows one lane
  per speaker coloured by IC/OOC and the processing position; brushing a time range
  filters the grid and selects its segments (:attr:`ReviewWidget.selected_segment_ids`,
  :attr:`ReviewWidget.selected_range`);
- **playback** (:class:`livereview.ui.playback.Playback`) plays the clicked segment and
  draws the waveform of its chunk; only the clip is decoded and sent;
- **reruns**: the toolbar's "Reclassify selected" and "Re-diarize selected" buttons
  (:meth:`ReviewWidget.rerun` from Python) rerun the selected rows, else the brushed
  time range, on a thread of their own; the new values arrive as live events and
  update just those rows;
- **boundaries**: a row's start and end (typed, or dragged on the waveform), a split
  at a word and a merge with the row before are corrections like the others; the rows
  they replace are removed from every view (``{"kind": "remove", "ids": [...]}``);
- **notices in words**: every change to the rows (an edit, a batch, an undo, another
  operator's correction, a rerun) is told with the rows, the old and new values and
  who (:mod:`livereview.ui.notices`). Rows the global speaker pass or a rerun changed
  travel with their ``changes``, so a view marks those its reader had already seen;
- **speakers**: the speakers found, their talk time and a sample row
  (:attr:`ReviewGrid.speaker_stats`), mapped to the party's players in one click
  (:meth:`ReviewWidget.map_speaker`, kept by :meth:`Session.set_speaker_map`); each speaker
  not yet mapped shows who :meth:`Session.suggest_speaker_map` suggests it is, confirmed in
  one click through the same mapping (:attr:`ReviewGridWithSuggestions.speaker_suggestions`,
  computed when the review opens, when the run completes and when the map changes, on a
  thread of their own: the updater only writes the result).

Threading: live events reach the session's emitter thread for this widget, which only
puts them into a queue. ONE updater thread owns everything sent to the browser: it
coalesces events, merges operator corrections, sends appends and patches at most
every :data:`FLUSH_SECONDS`, redraws the timeline at most every
:data:`TIMELINE_SECONDS`, and answers snapshot and playback requests. While it still
reads a long session, the main thread answers a view's snapshot request with the rows
that view shows first (built before the rest), so the grid paints at once. Browser edits
arrive on the kernel's main thread and go straight to the session's override store;
their outcome is handed to the updater. The pipeline never waits for the widget.

Usage
-----
>>> session = livereview.run("game.flac", num_speakers=4, background=True)   # doctest: +SKIP
>>> livereview.review(session, user="ana", role="editor")                    # doctest: +SKIP
"""

from __future__ import annotations

import getpass
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from livereview.core.corrections import base_ids
from livereview.core.events import (
    CHUNK_COMPLETED,
    ERROR,
    STAGE_COMPLETED,
    STAGE_STARTED,
    SUMMARY,
    UPDATE,
    LiveEvent,
)
from livereview.core.roles import can_write, check_role
from livereview.live.emitter import Subscription
from livereview.review.session import Session
from livereview.store.rerun_log import Rerun
from livereview.ui.actions import ReviewActions
from livereview.ui.grid import (
    FIELDS,
    GridRows,
    ReviewGrid,
    base_row,
    merged_rows,
    metrics_line,
    row_values,
    sorted_rows,
    speaker_stats,
)
from livereview.ui.notices import CORRECTION_OF, FIELD_WORDS, batch_question, clock, describe, notice_text
from livereview.ui.playback import Playback, load_segment_clip
from livereview.ui.scene_lane import SceneLane
from livereview.ui.timeline import Timeline

logger = logging.getLogger(__name__)

__all__ = ["FIELDS", "PREVIEW_ROWS", "ReviewGrid", "ReviewGridWithSuggestions", "ReviewWidget", "review"]

#: Seconds between two sends of appends and patches (at most four renders a second).
FLUSH_SECONDS = 0.25
#: Seconds between two timeline redraws.
TIMELINE_SECONDS = 1.0
#: Rows of the partial snapshot a long session sends first (a view paints them at once).
PREVIEW_ROWS = 200
#: How notices name the global pass, which may change rows nobody corrected.
GLOBAL_PASS = "the global speaker pass"

_STOP = "stop"


class ReviewGridWithSuggestions(ReviewGrid):
    """The review grid whose speaker panel also offers the suggested speaker map."""

    #: Per diarized speaker not yet mapped: ``speaker``, ``player`` (``""`` when only the role is
    #: known), ``character``, ``role``, ``confidence`` and ``evidence``, from :meth:`Session.suggest_speaker_map`.
    speaker_suggestions = t.List(t.Dict()).tag(sync=True)


class ReviewWidget(w.VBox):
    """The live review of one session: grid, timeline and playback, kept up to date.

    Create it with :func:`review`. Closing it (:meth:`close`) stops following the session.

    Parameters
    ----------
    session : Session
        The recorded session, running or finished.
    user : str
        Who makes the corrections (kept in the override log).
    role : str
        ``"viewer"`` (read-only), ``"editor"`` or ``"admin"``.
    height : int
        Height of the grid's rows area in pixels.
    """

    def __init__(self, session: Session, *, user: str, role: str = "editor", height: int = 420) -> None:
        check_role(role)
        self.session = session
        self.user = user
        self.role = role
        self.grid = ReviewGridWithSuggestions(
            session_id=session.session_id, user=user, role=role, can_edit=can_write(role), height=height
        )
        self.playback = Playback(can_edit=can_write(role))
        duration = float(session.metadata.get("audio", {}).get("duration") or 0.0)
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.timeline = Timeline(
            duration,
            on_select=lambda span: self._queue.put(("range", span)),
            on_action=lambda action: self._queue.put(("timeline", action)),
        )
        super().__init__(children=[self.grid, self.timeline.box, self.playback])
        self.add_class("lr-review-box")

        self.actions = ReviewActions(
            session,
            user,
            role,
            report=lambda outcome: self._queue.put(("result", outcome)),
            notify=lambda level, text: self._queue.put(("notice", (level, text))),
            selection=lambda: (self.selected_segment_ids, self.selected_range),
        )
        self._notices = itertools.count(1)
        self._closed = False
        # Updater-owned state (only the updater thread touches it).
        self.rows = GridRows()  # the model's values, and the rows as corrected and as sent
        self._dirty: set[str] = set()  # segment ids to merge and send
        self._sent: set[str] = set()  # row ids the views have
        self._causes: dict[str, str] = {}  # segment id -> what changed it without an operator
        self._corrections_stale = False  # an override event came: compare the corrections at the next flush
        self._actor: tuple[str, bool] = (user, False)  # who made the last announced correction, and if an undo
        self._rerun_rows: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}  # row id -> before, after
        self._rerun_done: tuple[str, int, int] | None = None  # a completed rerun's name, changed, selected
        self._meta_dirty = False
        self._stats_dirty = True
        self._timeline_dirty = True
        self._known_speakers: set[str] = set()
        self._suggestions_stale = True  # suggest the speaker map again at the next meta write
        self._suggested_for: dict[str, str] | None = None  # the speaker map the suggestions were made with
        self._suggester: threading.Thread | None = None  # computes them off the updater thread
        self._status, self._position, self._duration = "created", 0.0, duration
        self._completed: set[int] = set()
        self._seeded_seq = 0
        self._last_clip: tuple[dict[str, Any], list[bytes]] | None = None
        # While the updater reads a long session, the kernel's main thread answers a view's
        # snapshot request with the rows it shows first (built before the rest): it paints at once.
        self._early_preview: dict[str, Any] | None = None
        self._send_lock = threading.RLock()  # orders that preview before every later message
        #: Custom messages sent to the browser so far.
        self.messages_sent = 0

        # Subscribe first, then read the session (on the updater thread, while the browser
        # builds the views): nothing emitted in between is lost.
        self._subscription: Subscription = session.events.subscribe(
            lambda event: self._queue.put(("event", event)), name=f"review-{user}", maxsize=10_000
        )
        self._queue.put(("resync", False))
        self.grid.on_msg(self._on_grid_message)
        self.playback.on_msg(self._on_playback_message)
        self._thread = threading.Thread(target=self._run, name=f"livereview-review-{session.session_id}", daemon=True)
        self._thread.start()

    # -- public API ---------------------------------------------------------------------------

    @property
    def selected_segment_ids(self) -> list[str]:
        """Row ids selected in the grid or by the timeline brush (for reruns)."""
        return list(self.grid.selection)

    @property
    def selected_range(self) -> tuple[float, float] | None:
        """``(start, end)`` in seconds brushed on the timeline, or None."""
        span = self.grid.time_range
        return (span[0], span[1]) if len(span) == 2 else None

    def edit(
        self, segment_id: str, *, reason: str | None = None, allow_new_speaker: bool = False, **fields: Any
    ) -> Any:
        """Correct one row as this review's user, as a browser edit would (``start=`` and ``end=`` too).

        The outcome shows in the widget; errors are raised as well.

        Raises
        ------
        PermissionError
            The review's role is ``"viewer"``.
        OverrideError
            The store refused the correction (see its message).
        """
        return self.actions.edit(
            None, segment_id, fields, reason=reason, allow_new_speaker=allow_new_speaker, raise_errors=True
        )

    def apply(
        self,
        segment_ids: Iterable[str],
        *,
        confirm: bool = False,
        reason: str | None = None,
        allow_new_speaker: bool = False,
        **fields: Any,
    ) -> Any:
        """Set ``fields`` on every row of ``segment_ids`` as one batch; returns its id.

        One row is corrected at once (its records are returned); for several, without
        ``confirm=True`` nothing is written and the error says what would change.
        """
        ids = [str(i) for i in segment_ids]
        return self.actions.apply(
            None, ids, fields, confirm=confirm, reason=reason, allow_new_speaker=allow_new_speaker, raise_errors=True
        )

    def undo(self) -> str | None:
        """Revert this user's last applied batch; its id, or None when there is nothing to undo."""
        return self.actions.undo(None, raise_errors=True)

    def split(self, segment_id: str, word: int) -> Any:
        """Split a row before its word ``word`` (0-based, in its text) into ``<id>.1`` and ``<id>.2``."""
        return self.actions.split(None, segment_id, word, raise_errors=True)

    def merge(self, first: str, second: str) -> Any:
        """Merge row ``second`` into ``first``, the row right before it, spoken by the same speaker."""
        return self.actions.merge(None, first, second, raise_errors=True)

    def map_speaker(self, speaker: str, player: str) -> None:
        """Say which player (or new name) a diarized speaker is; kept by :meth:`Session.set_speaker_map`."""
        self.actions.map_speaker(speaker, player, raise_errors=True)

    def confirm_suggestion(self, speaker: str) -> None:
        """Map ``speaker`` to the player the speaker panel suggests for it, as its confirm button does.

        Raises
        ------
        KeyError
            No player is suggested for ``speaker`` now.
        """
        suggested = {s["speaker"]: s for s in self.grid.speaker_suggestions if s.get("player")}
        if speaker not in suggested:
            msg = f"no player is suggested for speaker {speaker!r}; suggested: {sorted(suggested)}"
            raise KeyError(msg)
        self.map_speaker(speaker, suggested[speaker]["player"])

    def rerun(self, kind: str, **options: Any) -> Rerun | None:
        """Rerun the selected rows (else the brushed time range), as the toolbar's buttons do.

        ``kind`` is ``"reclassify"`` or ``"rediarize"``; ``options`` go to
        :meth:`Session.reclassify` or :meth:`Session.rediarize` (``classifier=``,
        ``num_speakers=``…). The new values reach the rows as live events; the outcome
        shows as a notice. Errors are raised as well.
        """
        return self.actions.rerun(kind, options, raise_errors=True)

    def refresh(self) -> None:
        """Re-read the session and send every view a fresh snapshot."""
        self._queue.put(("resync", True))

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything queued so far has been sent to the browser."""
        done = threading.Event()
        self._queue.put(("flush", done))
        if not done.wait(timeout):
            msg = f"the review updater did not catch up within {timeout} s"
            raise TimeoutError(msg)

    def show_scenes(self, scenes: pd.DataFrame | None = None) -> SceneLane:
        """Add a lane of the session's scenes above the timeline (or redraw it); returns it.

        ``scenes`` defaults to :meth:`Session.scenes` (built or reused, kept current).
        """
        scenes = self.session.scenes() if scenes is None else scenes
        lane = getattr(self, "scene_lane", None)
        if lane is None:
            self.scene_lane = lane = SceneLane(self.timeline.x_scale, scenes)
            controls, *rest = self.timeline.box.children
            self.timeline.box.children = (controls, lane.figure, *rest)
        else:
            lane.update(scenes)
        return lane

    def close(self) -> None:
        """Stop following the session and close the widgets."""
        if getattr(self, "_closed", True):  # closed, or never fully built
            super().close()
            return
        self._closed = True
        self.session.events.unsubscribe(self._subscription)
        self._queue.put((_STOP, None))
        if threading.current_thread() is not self._thread:
            self._thread.join(10)
        for widget in (self.grid, self.playback, self.timeline.figure, self.timeline.box, *self.children):
            widget.close()
        super().close()

    # -- browser messages (kernel main thread) -------------------------------------------------

    def _on_grid_message(self, _widget: Any, content: dict[str, Any], _buffers: list[Any]) -> None:
        kind = content.get("kind")
        request = content.get("request")
        if kind == "snapshot_request":
            with self._send_lock:
                if self._early_preview is not None:
                    self._push(self.grid, self._early_preview | {"view": content.get("view")})
            self._queue.put(("snapshot", content.get("view")))
        elif kind in ("edit", "boundary"):
            self._edit_from_browser(request, content)
        elif kind == "batch":
            self.actions.browser_batch(request, content)
        elif kind == "undo":
            self.actions.undo(request)
        elif kind == "split":
            self.actions.split(request, str(content.get("id")), content.get("word"))
        elif kind == "merge":
            self.actions.merge(request, str(content.get("first")), str(content.get("second")))
        elif kind == "map_speaker":
            self.actions.map_speaker(str(content.get("speaker") or ""), str(content.get("player") or ""))
        elif kind == "rerun":  # minutes of work: never on the kernel's main thread
            threading.Thread(target=self.actions.rerun, args=(str(content.get("rerun")), {}), daemon=True).start()
        elif kind in ("play", "toggle_play"):
            self._queue.put((kind, str(content.get("id"))))
        elif kind == "select":
            self._queue.put(("select", [str(i) for i in content.get("ids") or []]))
        elif kind == "clear_range":
            self._queue.put(("clear_range", None))
        else:
            self._queue.put(("notice", ("error", f"unknown message kind {kind!r} from the browser; nothing done")))

    def _on_playback_message(self, _widget: Any, content: dict[str, Any], _buffers: list[Any]) -> None:
        kind = content.get("kind")
        if kind == "request":
            self._queue.put(("replay", None))
        elif kind == "boundary":
            self._edit_from_browser(content.get("request"), content)

    def _edit_from_browser(self, request: Any, content: dict[str, Any]) -> None:
        """A field edit, or a ``boundary`` message (``start`` and/or ``end``) from the grid or the waveform."""
        if content.get("kind") != "boundary":
            self.actions.browser_edit(request, content)
            return
        times = {name: content[name] for name in ("start", "end") if content.get(name) is not None}
        segment_id = str(content.get("id"))
        if not times:
            self._queue.put(("notice", ("error", f"no start or end given for {segment_id!r}; nothing done")))
            return
        self.actions.edit(request, segment_id, times, reason=content.get("reason") or None, allow_new_speaker=False)

    # -- the updater thread ---------------------------------------------------------------------

    def _seed(self) -> None:
        """Load the session's current state (the snapshot views are built from)."""
        session = self.session
        self._seeded_seq = session.events.seq  # events up to here are already in what is read below
        corrections = session.corrected_values()
        segments = session.segment_list()
        self._status = session.status
        bases = {s.segment_id: base_row(s) for s in segments}
        if len(bases) > 2 * PREVIEW_ROWS:
            shown = segments[:PREVIEW_ROWS] if self._status == "complete" else segments[-PREVIEW_ROWS:]
            preview = sorted_rows(merged_rows((bases[s.segment_id] for s in shown), corrections))
            with self._send_lock:
                self._early_preview = self._snapshot(None, [row_values(row) for row in preview], len(bases), True)
        self.rows.reset(bases, corrections)
        with self._send_lock:
            self._early_preview = None
        rows = self.rows.rows
        self._sent = set(rows)
        self._dirty.clear()
        self._causes.clear()
        self._corrections_stale = False
        self._known_speakers = set(session.known_speakers)
        self._suggestions_stale = True
        chunks = session.chunks
        self._completed = set(session.completed_chunks)
        self._duration = float(session.metadata.get("audio", {}).get("duration") or self._duration)
        self._duration = max([self._duration, *(row["end"] for row in rows.values())])
        # Processing reaches past the last final chunk once the next one is transcribed.
        ends = [float(e) for e in chunks["end"]] if "end" in chunks else []
        ends += [row["end"] for row in rows.values()]
        self._position = self._duration if self._status == "complete" else max(ends, default=0.0)
        self._meta_dirty = self._timeline_dirty = self._stats_dirty = True
        self._write_meta()

    def _run(self) -> None:
        next_flush = next_timeline = 0.0
        while True:
            now = time.monotonic()
            deadlines = []
            if self._pending():
                deadlines.append(next_flush - now)
            if self._timeline_dirty:
                deadlines.append(next_timeline - now)
            timeout = max(min(deadlines), 0.0) if deadlines else None
            items = []
            try:
                items.append(self._queue.get(timeout=timeout))
                while True:
                    items.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            flushed: list[threading.Event] = []
            for kind, payload in items:
                if kind == _STOP:
                    self._flush()
                    return
                if kind == "flush":
                    flushed.append(payload)
                    continue
                try:
                    self._handle(kind, payload)
                except Exception as error:
                    logger.exception("live review could not handle %s", kind)
                    self._set_notice("error", f"{type(error).__name__}: {error}")
            now = time.monotonic()
            if self._pending() and (now >= next_flush or flushed):
                self._flush()
                next_flush = now + FLUSH_SECONDS
            if self._timeline_dirty and (now >= next_timeline or flushed):
                self._draw_timeline()
                next_timeline = now + TIMELINE_SECONDS
            for done in flushed:
                done.set()

    def _handle(self, kind: str, payload: Any) -> None:
        if kind == "event":
            self._apply_event(payload)
        elif kind == "snapshot":
            self._send_snapshot(payload)
        elif kind == "resync":
            self._seed()
            if payload:
                self._send_snapshot(None)
        elif kind == "result":
            self._send_result(payload)
        elif kind == "play":
            self._play(payload)
        elif kind == "toggle_play":
            if self._last_clip is not None and self._last_clip[0]["id"] == payload:
                self._push(self.playback, {"kind": "toggle"})
            else:
                self._play(payload)
        elif kind == "replay":
            if self._last_clip is not None:
                self._push(self.playback, *self._last_clip)
        elif kind == "select":
            rows = self.rows.rows
            self.grid.selection = [i for i in dict.fromkeys(payload) if i in rows]
            self.timeline.mark_selection(rows[i] for i in self.grid.selection)
        elif kind == "range":
            self._select_range(payload)
        elif kind == "clear_range":
            self.timeline.clear_selection()
            self._select_range(None)
        elif kind == "timeline":
            self.timeline.apply(payload)
            self._draw_timeline()
        elif kind == "suggestions":
            mapped = self.session.speaker_map
            self.grid.speaker_suggestions = [s for s in payload if s["speaker"] not in mapped]
            self._meta_dirty = True  # suggest again if the map changed meanwhile
        elif kind == "notice":
            self._set_notice(*payload)
            self._meta_dirty = self._timeline_dirty = True  # a speaker mapping renames rows and lanes

    def _apply_event(self, event: LiveEvent) -> None:
        if event.seq <= self._seeded_seq and not (event.kind == SUMMARY and event.data.get("dropped")):
            return  # already in the seeded state
        if event.stage == "override":  # corrections are merged from the store at the next flush
            self._corrections_stale = True
            self._actor = (str(event.data.get("user") or "someone"), event.data.get("op") == "revert")
            self._known_speakers = set(self.session.known_speakers)
        else:
            cause = self._cause(event)
            for payload in event.segments:
                self.rows.base[payload.segment_id] = base_row(payload)
                self._dirty.add(payload.segment_id)
                if cause:
                    self._causes[payload.segment_id] = cause
        if event.position is not None:
            self._position = max(self._position, float(event.position))
            self._meta_dirty = self._timeline_dirty = True
        if event.kind == STAGE_STARTED and event.stage == "run":
            self._status = "running"
            self._duration = float(event.data.get("duration") or self._duration)
        elif event.kind == CHUNK_COMPLETED and event.chunk_id is not None:
            self._completed.add(int(event.chunk_id))
        elif event.kind == SUMMARY and event.data.get("dropped"):
            logger.warning("live review missed %s events; reloading the session", event.data["dropped"])
            self._seed()
            self._send_snapshot(None)
            return
        elif event.kind == SUMMARY and event.stage == "run":
            self._status = event.status or "complete"
            self._position = self._duration
            self._suggestions_stale = True  # every speaker is found now: suggest who is who
        elif event.stage == "rerun" and event.kind == STAGE_COMPLETED:
            data = event.data
            self._suggestions_stale = True
            self._rerun_done = (self._rerun_name(event), int(data.get("changed") or 0), int(data.get("segments") or 0))
            return  # told with its rows at the next flush
        elif event.stage == "rerun" and event.kind in (STAGE_STARTED, ERROR):
            level = "error" if event.kind == ERROR else "info"
            self._set_notice(level, f"{event.message}…" if event.kind == STAGE_STARTED else event.message)
            return  # a rerun leaves the run's status as it is
        elif event.kind == ERROR:
            self._status = "failed"
            self._set_notice("error", f"the run failed: {event.message}")
        else:
            return
        self._meta_dirty = self._timeline_dirty = True

    @staticmethod
    def _cause(event: LiveEvent) -> str | None:
        """What changed the rows of an ``update`` no operator made: the global pass (during the run or
        at its end) or a rerun."""
        if event.kind != UPDATE:
            return None
        if event.stage in ("global", "recluster"):  # the same global clustering, during the run or at its end
            return GLOBAL_PASS
        if event.stage == "rerun":
            return f"{event.data.get('kind', 'rerun')} {event.data.get('rerun_id', '')}".strip()
        return None

    def _rerun_name(self, event: LiveEvent) -> str:
        rerun_id = str(event.data.get("rerun_id") or "")
        try:
            user = self.session.rerun(rerun_id).record.get("user")
        except (KeyError, ValueError, OSError):
            user = None
        return f"{event.data.get('kind', 'rerun')} {rerun_id}" + (f" by {user}" if user else "")

    def _pending(self) -> bool:
        """Whether a flush has something to send."""
        return bool(self._dirty or self._meta_dirty or self._corrections_stale or self._rerun_done)

    def _flush(self) -> None:
        """Send the rows changed since the last flush (appends, patches, removals) and the status."""
        corrections = self.session.corrected_values() if self._dirty or self._corrections_stale else None
        if corrections is not None:
            corrected = self.rows.changed(corrections)
            if corrected:
                self._tell(corrected, corrections)  # another operator's correction, or ours before its result
            self._corrections_stale = False
        if self._dirty:
            caused = {sid: self._causes.pop(sid) for sid in self._dirty if sid in self._causes}
            before = self.rows.rows_from(caused) if caused else {}
            rows, gone = self.rows.merge(self._dirty, corrections or self.rows.corrections)
            self._dirty.clear()
            self._send_rows(rows, gone, changes=self._changes(before, rows, caused))
        if self._rerun_done is not None:
            self._tell_rerun(*self._rerun_done)
        if self._meta_dirty:
            self._write_meta()

    def _tell_rerun(self, name: str, changed: int, selected: int) -> None:
        """The notice of a completed rerun: how many rows changed, which, from what to what."""
        before = {row_id: old for row_id, (old, _) in self._rerun_rows.items()}
        after = {row_id: new for row_id, (_, new) in self._rerun_rows.items()}
        clauses = [clause.removeprefix("set ") for clause in describe(before, after)]
        lead = f"{name} changed {changed} of {selected} row{'s' if selected != 1 else ''}"
        self._set_notice("info", notice_text(name, clauses, lead=lead) if clauses else f"{lead}.")
        self._rerun_rows, self._rerun_done = {}, None

    def _tell(self, segment_ids: set[str], corrections: dict[str, dict[str, Any]], *, undo: bool | None = None) -> None:
        """Merge corrections that changed, send the rows, and say in words what changed and who did it."""
        before = self.rows.rows_from(segment_ids)
        rows, gone = self.rows.merge(segment_ids, corrections)
        self._send_rows(rows, gone)
        actor, reverted = self._actor
        undone = reverted if undo is None else undo
        after = {row["id"]: row for row in rows}
        clauses = describe(before, after, undo=undone)
        if clauses:
            self._set_notice("info", notice_text(actor, clauses, undo=undone))

    def _changes(
        self, before: dict[str, dict[str, Any]], rows: list[dict[str, Any]], caused: dict[str, str]
    ) -> dict[str, dict[str, Any]]:
        """Rows whose shown values changed without an operator: row id -> cause and ``[column, old, new]``.

        A rerun's rows are also kept for its notice.
        """
        changes = {}
        for row in rows:
            old = before.get(row["id"])
            causes = [caused[sid] for sid in base_ids(row["id"]) if sid in caused]
            if old is None or not causes:
                continue
            if causes[0] != GLOBAL_PASS:
                self._rerun_rows[row["id"]] = (self._rerun_rows.get(row["id"], (old, row))[0], row)
            fields = [[c, old.get(c), row.get(c)] for c in FIELD_WORDS if old.get(c) != row.get(c)]
            if fields:
                changes[row["id"]] = {"cause": causes[0], "fields": fields}
        return changes

    def _send_rows(
        self, rows: list[dict[str, Any]], gone: list[str], *, changes: dict[str, dict[str, Any]] | None = None
    ) -> None:
        appends, patches = [], []
        for row in rows:
            if row["speaker"]:
                self._known_speakers.add(row["speaker"])
            (patches if row["id"] in self._sent else appends).append(row)
            self._duration = max(self._duration, row["end"])
        removed = [row_id for row_id in gone if row_id in self._sent]
        self._sent.difference_update(removed)
        self._sent.update(row["id"] for row in appends)
        wire = self.rows.wire
        if removed:
            self._push(self.grid, {"kind": "remove", "ids": removed})
        if appends:
            self._push(self.grid, {"kind": "append", "rows": [wire[r["id"]] for r in sorted_rows(appends)]})
        if patches:
            message = {"kind": "patch", "rows": [wire[r["id"]] for r in sorted_rows(patches)]}
            self._push(self.grid, message | ({"changes": changes} if changes else {}))
        if rows or removed:
            self._meta_dirty = self._timeline_dirty = self._stats_dirty = True

    def _write_meta(self) -> None:
        grid = self.grid
        session = self.session
        speakers = sorted(self._known_speakers)
        characters = self._characters()
        speaker_map = session.speaker_map
        values = [
            ("status", self._status),
            ("position", round(self._position, 3)),
            ("duration", round(self._duration, 3)),
            ("completed_chunks", sorted(self._completed)),
            ("speakers", speakers),
            ("players", self._players()),
            ("speaker_map", speaker_map),
            ("characters", characters),
            ("metrics", metrics_line(session.metrics())),
            ("health", [condition["message"] for condition in session.health()]),
        ]
        if self._stats_dirty:
            values.append(("speaker_stats", speaker_stats(self.rows.rows.values())))
            self._stats_dirty = False
        if self._suggestions_stale or self._suggested_for != speaker_map:
            self._suggest(speaker_map)
        with grid.hold_sync():
            for name, value in values:
                if getattr(grid, name) != value:
                    setattr(grid, name, value)
        self._meta_dirty = False

    def _suggest(self, speaker_map: dict[str, str]) -> None:
        """Suggest the speaker map again, on a thread: its rows reach the updater as a ``suggestions`` item."""
        if self._suggester is not None and self._suggester.is_alive():
            self._suggestions_stale = True  # once the one under way is in
            return
        self._suggestions_stale, self._suggested_for = False, dict(speaker_map)
        if not self.rows.rows:
            self.grid.speaker_suggestions = []
            return
        self._suggester = threading.Thread(
            target=lambda: self._queue.put(("suggestions", self._speaker_suggestions(dict(speaker_map)))),
            name=f"livereview-suggest-{self.session.session_id}",
            daemon=True,
        )
        self._suggester.start()

    def _speaker_suggestions(self, speaker_map: dict[str, str]) -> list[dict[str, Any]]:
        """The suggested speaker map for the speakers not yet mapped, as the speaker panel shows it."""
        try:
            table = self.session.suggest_speaker_map()
        except Exception:  # a suggestion is a help: the review goes on without it
            logger.exception("could not suggest the speaker map of %s", self.session.session_id)
            return []

        def text(value: Any) -> str:
            return "" if pd.isna(value) else str(value)

        return [
            {
                "speaker": str(row.speaker_id),
                "player": text(row.player),
                "character": text(row.character),
                "role": str(row.role),
                "confidence": float(row.confidence),
                "evidence": str(row.evidence),
            }
            for row in table.itertuples(index=False)
            if not row.given and row.confidence > 0 and row.speaker_id not in speaker_map
        ]

    def _players(self) -> list[str]:
        party = self.session.party
        if party is None:
            return []
        return list(dict.fromkeys(party.people()))

    def _characters(self) -> list[str]:
        party = self.session.party
        names = [c.name for c in party.characters] if party is not None else []
        used = {r["character"] for r in self.rows.rows.values() if r["character"]}
        return [*names, *sorted(used - set(names))]

    def _send_snapshot(self, view: Any) -> None:
        # Pending rows and corrections written elsewhere are merged first; other rows are sent as they are.
        corrections = self.session.corrected_values()
        pending = (self._dirty | self.rows.changed(corrections)) - {""}
        rows, gone = self.rows.merge(pending, corrections)
        self._dirty.clear()
        self._sent = set(self.rows.rows)
        wire = self.rows.ordered_wire()
        if len(wire) > 2 * PREVIEW_ROWS:  # the rows a view shows first, so it paints before the rest arrives
            preview = wire[:PREVIEW_ROWS] if self._status == "complete" else wire[-PREVIEW_ROWS:]
            self._push(self.grid, self._snapshot(view, preview, len(wire), True))
        self._push(self.grid, self._snapshot(view, wire, len(wire), False))
        self._stats_dirty = self._stats_dirty or bool(rows or gone)
        self._write_meta()
        self._timeline_dirty = True

    @staticmethod
    def _snapshot(view: Any, rows: list[list[Any]], total: int, partial: bool) -> dict[str, Any]:
        """A snapshot message for ``view`` (None: any view): ``rows`` of ``total``, or the first of them."""
        message = {"kind": "snapshot", "view": view, "fields": list(FIELDS), "total": total, "rows": rows}
        return message | ({"partial": True} if partial else {})

    def _send_result(self, outcome: dict[str, Any]) -> None:
        corrections = self.session.corrected_values()
        changed = self.rows.changed(corrections)
        if outcome.get("ok") and changed:
            self._actor = (self.user, bool(outcome.get("undone")))
            self._tell(changed, corrections, undo=bool(outcome.get("undone")))
        elif changed:  # others' corrections, read with this outcome
            self._tell(changed, corrections)
        current = self.rows.rows
        ids = [i for i in outcome.get("ids", []) if i in current]
        if outcome.get("needs_confirm"):
            outcome = outcome | {"message": self._question(outcome, [current[i] for i in ids])}
        self._push(self.grid, {"kind": "result", **outcome, "rows": [self.rows.wire[i] for i in ids]})
        playing = self._last_clip[0]["id"] if self._last_clip is not None else None
        if playing in outcome.get("ids", []) and playing in current:  # its span may have moved: the new clip
            self._play(playing, autoplay=False)
        if outcome.get("error"):
            self._set_notice("error", outcome["error"])
        elif outcome.get("undone") and not outcome.get("batch_id"):
            self._set_notice("info", f"{self.user}: nothing to undo.")

    def _question(self, outcome: dict[str, Any], rows: list[dict[str, Any]]) -> str:
        """The confirmation a batch asks for, in words."""
        fields = outcome.get("fields") or {}
        column_of = {field: column for column, field in CORRECTION_OF.items()}
        if len(fields) != 1 or next(iter(fields)) not in column_of:
            return outcome.get("message", "")
        field, value = next(iter(fields.items()))
        column = column_of[field]
        return batch_question(column, value, rows, sum(row.get(column) == value for row in rows))

    def _set_notice(self, level: str, text: str) -> None:
        self.grid.notice = {"id": next(self._notices), "level": level, "text": text}

    def _select_range(self, span: tuple[float, float] | None) -> None:
        with self.grid.hold_sync():
            if span is None:
                self.grid.time_range = []
                return
            start, end = span
            self.grid.time_range = [round(start, 3), round(end, 3)]
            chosen = sorted_rows(r for r in self.rows.rows.values() if r["end"] > start and r["start"] < end)
            self.grid.selection = [r["id"] for r in chosen]
        self.timeline.mark_selection(chosen)

    def _draw_timeline(self) -> None:
        self.timeline.update(self.rows.rows.values(), self._position, self._duration, self.session.speaker_map)
        self._timeline_dirty = False

    def _play(self, segment_id: str, *, autoplay: bool = True) -> None:
        row = self.rows.rows.get(segment_id)
        if row is None:
            self.playback.error = f"segment {segment_id!r} is not in this session"
            return
        try:
            clip = load_segment_clip(
                self.session.audio_path,
                segment_id,
                row["start"],
                row["end"],
                self._chunk_window(row["chunk"]),
                duration=self._duration or None,
            )
        except (OSError, ValueError) as error:
            self.playback.error = f"cannot play segment {segment_id!r}: {error}"
            return
        label = f"{clock(row['start'])}–{clock(row['end'])}  {row['speaker'] or '(no speaker)'}: {row['text']}"
        self._last_clip = clip.message(
            label=label,
            segment_start=row["start"],
            segment_end=row["end"],
            editable=self.grid.can_edit and row["chunk"] in self._completed,
            autoplay=autoplay,
        )
        with self.playback.hold_sync():
            self.playback.label = label
            self.playback.error = ""
        self._push(self.playback, *self._last_clip)

    def _chunk_window(self, chunk_id: int) -> tuple[float, float]:
        chunks = self.session.chunks
        if "chunk_id" in chunks:
            match = chunks[chunks["chunk_id"] == chunk_id]
            if len(match):
                return float(match["start"].iloc[0]), float(match["end"].iloc[0])
        spans = [(r["start"], r["end"]) for r in self.rows.rows.values() if r["chunk"] == chunk_id]
        return min(s for s, _ in spans), max(e for _, e in spans)

    def _push(self, widget: Any, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        with self._send_lock:
            widget.send(content, buffers)
            self.messages_sent += 1


def review(
    session: Session | os.PathLike[str] | str,
    *,
    user: str | None = None,
    role: str = "editor",
    height: int = 420,
) -> ReviewWidget:
    """Display the live review of a session (running or finished).

    Parameters
    ----------
    session : Session or path
        A session, or the directory of one (reopened with :func:`livereview.open_session`). A
        session another process is running (a batch worker, another notebook) is followed
        live through its event log.
    user : str, optional
        Who makes the corrections; the login name by default.
    role : str
        ``"viewer"`` (no edit controls, writes refused), ``"editor"`` or ``"admin"``.
    height : int
        Height of the grid's rows area in pixels.

    Returns
    -------
    ReviewWidget
        An ipywidgets container: status bar, filters and grid, timeline, playback.
    """
    if not isinstance(session, Session):
        session = Session.open(session)
    if session.written_elsewhere():  # run by a batch worker or another notebook: follow its event log
        session.follow_log()
    return ReviewWidget(session, user=user or getpass.getuser(), role=role, height=height)
