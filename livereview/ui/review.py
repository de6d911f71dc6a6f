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
  update just those rows.

Threading: live events reach the session's emitter thread for this widget, which only
puts them into a queue. ONE updater thread owns everything sent to the browser: it
coalesces events, merges operator corrections, sends appends and patches at most
every :data:`FLUSH_SECONDS`, redraws the timeline at most every
:data:`TIMELINE_SECONDS`, and answers snapshot and playback requests. Browser edits
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
from collections.abc import Iterable, Mapping
from typing import Any

import ipywidgets as w

from livereview.core.events import CHUNK_COMPLETED, ERROR, STAGE_COMPLETED, STAGE_STARTED, SUMMARY, LiveEvent
from livereview.core.roles import can_write, check_role
from livereview.live.emitter import Subscription
from livereview.review.session import Session
from livereview.store.rerun_log import Rerun
from livereview.ui.actions import ReviewActions
from livereview.ui.grid import FIELDS, ReviewGrid, base_row, merged_rows, metrics_line, row_values, sorted_rows
from livereview.ui.playback import Playback, load_segment_clip
from livereview.ui.timeline import Timeline

logger = logging.getLogger(__name__)

__all__ = ["FIELDS", "PREVIEW_ROWS", "ReviewGrid", "ReviewWidget", "review"]

#: Seconds between two sends of appends and patches (at most four renders a second).
FLUSH_SECONDS = 0.25
#: Seconds between two timeline redraws.
TIMELINE_SECONDS = 1.0
#: Rows of the partial snapshot a long session sends first (a view paints them at once).
PREVIEW_ROWS = 200

_STOP = "stop"


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
        self.grid = ReviewGrid(
            session_id=session.session_id, user=user, role=role, can_edit=can_write(role), height=height
        )
        self.playback = Playback()
        duration = float(session.metadata.get("audio", {}).get("duration") or 0.0)
        self.timeline = Timeline(duration, on_select=lambda span: self._queue.put(("range", span)))
        super().__init__(children=[self.grid, self.timeline.figure, self.playback])
        self.add_class("lr-review-box")

        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
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
        self._base: dict[str, dict[str, Any]] = {}  # model values per segment
        self._rows: dict[str, dict[str, Any]] = {}  # with corrections merged
        self._wire: dict[str, list[Any]] = {}  # rows as sent
        self._order: list[str] = []  # segment ids by start time
        self._unsorted = False
        self._corrected: set[str] = set()  # segments merged with corrections
        self._dirty: set[str] = set()
        self._sent: set[str] = set()
        self._meta_dirty = False
        self._timeline_dirty = True
        self._known_speakers: set[str] = set()
        self._status, self._position, self._duration = "created", 0.0, duration
        self._completed: set[int] = set()
        self._seeded_seq = 0
        self._last_clip: tuple[dict[str, Any], list[bytes]] | None = None
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
        """Segment ids selected in the grid or by the timeline brush (for reruns)."""
        return list(self.grid.selection)

    @property
    def selected_range(self) -> tuple[float, float] | None:
        """``(start, end)`` in seconds brushed on the timeline, or None."""
        span = self.grid.time_range
        return (span[0], span[1]) if len(span) == 2 else None

    def edit(
        self, segment_id: str, *, reason: str | None = None, allow_new_speaker: bool = False, **fields: Any
    ) -> Any:
        """Correct one segment as this review's user, as a browser edit would.

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
    ) -> str:
        """Set ``fields`` on every segment of ``segment_ids`` as one batch; returns its id.

        Without ``confirm=True`` nothing is written and the error says what would change.
        """
        ids = [str(i) for i in segment_ids]
        return self.actions.apply(
            None, ids, fields, confirm=confirm, reason=reason, allow_new_speaker=allow_new_speaker, raise_errors=True
        )

    def undo(self) -> str | None:
        """Revert this user's last applied batch; its id, or None when there is nothing to undo."""
        return self.actions.undo(None, raise_errors=True)

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
        for widget in (self.grid, self.playback, self.timeline.figure, *self.children):
            widget.close()
        super().close()

    # -- browser messages (kernel main thread) -------------------------------------------------

    def _on_grid_message(self, _widget: Any, content: dict[str, Any], _buffers: list[Any]) -> None:
        kind = content.get("kind")
        request = content.get("request")
        if kind == "snapshot_request":
            self._queue.put(("snapshot", content.get("view")))
        elif kind == "edit":
            self.actions.browser_edit(request, content)
        elif kind == "batch":
            self.actions.browser_batch(request, content)
        elif kind == "undo":
            self.actions.undo(request)
        elif kind == "rerun":  # minutes of work: never on the kernel's main thread
            threading.Thread(target=self.actions.rerun, args=(str(content.get("rerun")), {}), daemon=True).start()
        elif kind == "play":
            self._queue.put(("play", str(content.get("id"))))
        elif kind == "select":
            self._queue.put(("select", [str(i) for i in content.get("ids") or []]))
        elif kind == "clear_range":
            self._queue.put(("clear_range", None))
        else:
            self._queue.put(("notice", ("error", f"unknown message kind {kind!r} from the browser; nothing done")))

    def _on_playback_message(self, _widget: Any, content: dict[str, Any], _buffers: list[Any]) -> None:
        if content.get("kind") == "request":
            self._queue.put(("replay", None))

    # -- the updater thread ---------------------------------------------------------------------

    def _seed(self) -> None:
        """Load the session's current state (the snapshot views are built from)."""
        session = self.session
        self._seeded_seq = session.events.seq  # events up to here are already in what is read below
        corrections = session.corrected_values()
        segments = session.segment_list()
        self._base = {s.segment_id: base_row(s) for s in segments}
        self._rows, self._wire, self._corrected = {}, {}, set()
        self._merge(self._base, corrections)
        self._order, self._unsorted = [s.segment_id for s in segments], False
        self._sent = set(self._rows)
        self._dirty.clear()
        self._known_speakers = set(session.known_speakers)
        chunks = session.chunks
        self._completed = set(session.completed_chunks)
        self._status = session.status
        self._duration = float(session.metadata.get("audio", {}).get("duration") or self._duration)
        self._duration = max([self._duration, *(row["end"] for row in self._rows.values())])
        # Processing reaches past the last final chunk once the next one is transcribed.
        ends = [float(e) for e in chunks["end"]] if "end" in chunks else []
        ends += [row["end"] for row in self._rows.values()]
        self._position = self._duration if self._status == "complete" else max(ends, default=0.0)
        self._meta_dirty = self._timeline_dirty = True
        self._write_meta()

    def _run(self) -> None:
        next_flush = next_timeline = 0.0
        while True:
            now = time.monotonic()
            deadlines = []
            if self._dirty or self._meta_dirty:
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
            if (self._dirty or self._meta_dirty) and (now >= next_flush or flushed):
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
        elif kind == "replay":
            if self._last_clip is not None:
                self._push(self.playback, *self._last_clip)
        elif kind == "select":
            self.grid.selection = [i for i in dict.fromkeys(payload) if i in self._rows]
        elif kind == "range":
            self._select_range(payload)
        elif kind == "clear_range":
            self.timeline.clear_selection()
            self._select_range(None)
        elif kind == "notice":
            self._set_notice(*payload)

    def _apply_event(self, event: LiveEvent) -> None:
        if event.seq <= self._seeded_seq and not (event.kind == SUMMARY and event.data.get("dropped")):
            return  # already in the seeded state
        for payload in event.segments:
            if event.stage == "override" and payload.segment_id in self._base:
                pass  # corrections are merged from the store at send time; the base row is unchanged
            else:
                self._base[payload.segment_id] = base_row(payload)
            self._dirty.add(payload.segment_id)
        if event.stage == "override":
            self._known_speakers = set(self.session.known_speakers)
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
        elif event.stage == "rerun" and event.kind in (STAGE_STARTED, STAGE_COMPLETED, ERROR):
            level = "error" if event.kind == ERROR else "info"
            self._set_notice(level, f"{event.message}…" if event.kind == STAGE_STARTED else event.message)
            return  # a rerun leaves the run's status as it is
        elif event.kind == ERROR:
            self._status = "failed"
            self._set_notice("error", f"the run failed: {event.message}")
        else:
            return
        self._meta_dirty = self._timeline_dirty = True

    def _merge(self, ids: Iterable[str], corrections: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Merge the corrections of segments ``ids`` into their rows and keep the rows as sent."""
        rows = merged_rows((self._base[sid] for sid in ids), corrections)
        for row in rows:
            sid = row["id"]
            if sid not in self._rows:
                self._order.append(sid)
                self._unsorted = True
            self._rows[sid], self._wire[sid] = row, row_values(row)
            if row["edited"]:
                self._corrected.add(sid)
            else:
                self._corrected.discard(sid)
        return rows

    def _ordered_wire(self) -> list[list[Any]]:
        if self._unsorted:
            self._order.sort(key=lambda sid: (self._rows[sid]["start"], sid))
            self._unsorted = False
        return [self._wire[sid] for sid in self._order]

    def _flush(self) -> None:
        """Send the rows changed since the last flush (appends, then patches) and the status."""
        if self._dirty:
            corrections = self.session.corrected_values()
            appends, patches = [], []
            for row in self._merge(self._dirty, corrections):
                sid = row["id"]
                if row["speaker"]:
                    self._known_speakers.add(row["speaker"])
                (patches if sid in self._sent else appends).append(row)
                self._duration = max(self._duration, row["end"])
            self._dirty.clear()
            self._sent.update(row["id"] for row in appends)
            if appends:
                self._push(self.grid, {"kind": "append", "rows": [self._wire[r["id"]] for r in sorted_rows(appends)]})
            if patches:
                self._push(self.grid, {"kind": "patch", "rows": [self._wire[r["id"]] for r in sorted_rows(patches)]})
            self._meta_dirty = self._timeline_dirty = True
        if self._meta_dirty:
            self._write_meta()

    def _write_meta(self) -> None:
        grid = self.grid
        speakers = sorted(self._known_speakers)
        characters = self._characters()
        with grid.hold_sync():
            for name, value in (
                ("status", self._status),
                ("position", round(self._position, 3)),
                ("duration", round(self._duration, 3)),
                ("completed_chunks", sorted(self._completed)),
                ("speakers", speakers),
                ("characters", characters),
                ("metrics", metrics_line(self.session.metrics())),
                ("health", [condition["message"] for condition in self.session.health()]),
            ):
                if getattr(grid, name) != value:
                    setattr(grid, name, value)
        self._meta_dirty = False

    def _characters(self) -> list[str]:
        party = self.session.party
        names = [c.name for c in party.characters] if party is not None else []
        used = {r["character"] for r in self._rows.values() if r["character"]}
        return [*names, *sorted(used - set(names))]

    def _send_snapshot(self, view: Any) -> None:
        # Pending rows and corrections written elsewhere are merged first; other rows are sent as they are.
        corrections = self.session.corrected_values()
        self._merge((self._dirty | self._corrected | corrections.keys()) & self._base.keys(), corrections)
        self._sent = set(self._rows)
        self._dirty.clear()
        rows = self._ordered_wire()
        snapshot = {"kind": "snapshot", "view": view, "fields": list(FIELDS), "total": len(rows)}
        if len(rows) > 2 * PREVIEW_ROWS:  # the rows a view shows first, so it paints before the rest arrives
            preview = rows[:PREVIEW_ROWS] if self._status == "complete" else rows[-PREVIEW_ROWS:]
            self._push(self.grid, snapshot | {"rows": preview, "partial": True})
        self._push(self.grid, snapshot | {"rows": rows})
        self._write_meta()
        self._timeline_dirty = True

    def _send_result(self, outcome: dict[str, Any]) -> None:
        corrections = self.session.corrected_values()
        merged = self._merge([sid for sid in outcome.get("ids", []) if sid in self._base], corrections)
        rows = [self._wire[row["id"]] for row in merged]
        self._push(self.grid, {"kind": "result", **outcome, "rows": rows})
        if outcome.get("error"):
            self._set_notice("error", outcome["error"])
        elif outcome.get("undone"):
            done = f"undid batch {outcome['batch_id']}" if outcome.get("batch_id") else "nothing to undo"
            self._set_notice("info", done)
        if rows:
            self._timeline_dirty = True

    def _set_notice(self, level: str, text: str) -> None:
        self.grid.notice = {"id": next(self._notices), "level": level, "text": text}

    def _select_range(self, span: tuple[float, float] | None) -> None:
        with self.grid.hold_sync():
            if span is None:
                self.grid.time_range = []
                return
            start, end = span
            self.grid.time_range = [round(start, 3), round(end, 3)]
            chosen = [r for r in self._rows.values() if r["end"] > start and r["start"] < end]
            self.grid.selection = [r["id"] for r in sorted_rows(chosen)]

    def _draw_timeline(self) -> None:
        self.timeline.update(self._rows.values(), self._position, self._duration)
        self._timeline_dirty = False

    def _play(self, segment_id: str) -> None:
        row = self._rows.get(segment_id)
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
        label = f"{_clock(row['start'])}–{_clock(row['end'])}  {row['speaker'] or '(no speaker)'}: {row['text']}"
        self._last_clip = clip.message(label=label)
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
        spans = [(r["start"], r["end"]) for r in self._rows.values() if r["chunk"] == chunk_id]
        return min(s for s, _ in spans), max(e for _, e in spans)

    def _push(self, widget: Any, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        widget.send(content, buffers)
        self.messages_sent += 1


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(seconds, 0.0), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:04.1f}" if hours else f"{minutes}:{rest:04.1f}"


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
        A session, or the directory of one (reopened with :func:`livereview.open_session`).
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
    return ReviewWidget(session, user=user or getpass.getuser(), role=role, height=height)
