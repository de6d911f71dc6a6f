"""Session metrics: event counts and throughput read from the event log, and their long-table form.

:class:`EventLogCounter` follows ``events.jsonl`` (events of every process on the
session) and counts runs, reruns and the last run's stage seconds as they happen;
:class:`SessionMonitor` holds a session's counter, health board and extra metric
sources (the live server registers its clients); :func:`metrics_frame` flattens a
session's metrics (``livereview.review.observability.session_metrics``) into rows
for a notebook.

Usage
-----
>>> session.metrics()["events"]["per_second"]                    # doctest: +SKIP
>>> session.metrics_frame().query("metric == 'real_time_factor'") # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from livereview.core.events import ERROR, STAGE_COMPLETED, STAGE_STARTED, SUMMARY
from livereview.core.jsonl import JsonlTail
from livereview.live.health import HealthBoard

#: Stage name of the ``stage_started`` event that opens a run, and of one that opens a rerun.
RUN_STAGE, RERUN_STAGE = "run", "rerun"
#: Key under which the live server's figures appear in :func:`session_metrics`.
LIVE_SERVER_SOURCE = "live_server"
#: Columns of :func:`metrics_frame`.
FRAME_COLUMNS = ("metric", "scope", "value")
#: Key of ``metrics.json`` that keeps :meth:`EventLogCounter.checkpoint` (not a figure: left out of the metrics shown).
EVENT_LOG_CHECKPOINT = "event_log"


class EventLogCounter:
    """Counts the events of an ``events.jsonl`` file, reading only what was appended since the last call.

    Events written by other processes on the same session are counted too.

    Parameters
    ----------
    path : path
        The session's ``events.jsonl``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._tail = JsonlTail(path)
        self._reset()

    def _reset(self) -> None:
        self.by_kind: Counter[str] = Counter()
        self.started: Counter[str] = Counter()
        self.total = 0
        self._run_first: float | None = None
        self._run_last: float | None = None
        self._run_events = 0
        self._in_run = False
        self._run_from = 0.0
        self._run_position = 0.0
        self._run_stages: Counter[str] = Counter()

    def checkpoint(self) -> dict[str, Any]:
        """Where the counting stands (read up to here, and the counts): kept in ``metrics.json`` by a run,
        so a session reopened later reads only the events logged after it."""
        with self._lock:
            self._read()
            return {
                "offset": self._tail.offset,
                "by_kind": dict(self.by_kind),
                "started": dict(self.started),
                "total": self.total,
                "run": [
                    self._run_first,
                    self._run_last,
                    self._run_events,
                    self._in_run,
                    self._run_from,
                    self._run_position,
                    dict(self._run_stages),
                ],
            }

    def resume(self, checkpoint: dict[str, Any]) -> None:
        """Go on from a :meth:`checkpoint` (ignored when the log is shorter than it: replaced since)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if checkpoint.get("offset", 0) > size:
            return
        with self._lock:
            self._tail.offset = int(checkpoint["offset"])
            self.by_kind = Counter(checkpoint["by_kind"])
            self.started = Counter(checkpoint["started"])
            self.total = int(checkpoint["total"])
            first, last, events, running, start, position, stages = checkpoint["run"]
            self._run_first, self._run_last, self._run_events, self._in_run = first, last, events, running
            self._run_from, self._run_position, self._run_stages = start, position, Counter(stages)

    def update(self) -> dict[str, Any]:
        """Read new lines and return the counts: totals, per kind, runs, reruns, and the last run so far.

        The last run spans its ``stage_started`` event to its ``summary`` or ``error`` (stage ``"run"``);
        while it goes on, its stage seconds (summed from the chunks' ``stage_completed`` events) and real-time
        factors over the audio processed so far are live.
        """
        with self._lock:
            self._read()
            seconds = (self._run_last or 0.0) - (self._run_first or 0.0)
            audio = self._run_position - self._run_from
            return {
                "logged": self.total,
                "by_kind": dict(self.by_kind),
                "runs": self.started[RUN_STAGE],
                "reruns": self.started[RERUN_STAGE],
                "last_run": {
                    "events": self._run_events,
                    "seconds": round(seconds, 3),
                    "per_second": round(self._run_events / seconds, 2) if seconds > 0 else None,
                    "running": self._in_run,
                    "audio_seconds": round(audio, 3),
                    "stage_seconds": {k: round(v, 3) for k, v in self._run_stages.items()},
                    "real_time_factors": {k: round(v / audio, 4) for k, v in self._run_stages.items()}
                    if audio > 0
                    else {},
                },
            }

    def _read(self) -> None:
        events = self._tail.read()
        if self._tail.restarted:  # replaced: count again from the start
            self._reset()
        for event in events:
            self._count(event)

    def _count(self, event: dict[str, Any]) -> None:
        kind, stage, timestamp = event.get("kind"), event.get("stage"), float(event.get("timestamp") or 0.0)
        self.total += 1
        self.by_kind[kind] += 1
        if kind == STAGE_STARTED and stage in {RUN_STAGE, RERUN_STAGE}:
            self.started[stage] += 1
            if stage == RUN_STAGE:
                self._run_first, self._run_events, self._in_run = timestamp, 0, True
                self._run_from = self._run_position = float(event.get("position") or 0.0)
                self._run_stages = Counter()
        if self._in_run:
            self._run_events += 1
            self._run_last = timestamp
            chunk_stage = event.get("chunk_id") is not None and event.get("elapsed") is not None
            if kind == STAGE_COMPLETED and stage and chunk_stage:  # per chunk: over the audio processed so far
                self._run_stages[stage] += float(event["elapsed"])
            if event.get("position") is not None:
                self._run_position = max(self._run_position, float(event["position"]))
            self._in_run = not (stage == RUN_STAGE and kind in {SUMMARY, ERROR})


class SessionMonitor:
    """Per-session observability state: degraded conditions, extra metric sources, event counts.

    Parameters
    ----------
    session_id : str
        Named in health banners.
    events_path : path
        The session's ``events.jsonl``.
    checkpoint : dict, optional
        Where an earlier count stood (see :meth:`EventLogCounter.checkpoint`).

    Attributes
    ----------
    health : HealthBoard
        Conditions reported for this session (see :mod:`livereview.live.health`).
    sources : dict of str to callable
        Name -> function returning a JSON-ready dict, added to :func:`session_metrics`
        under that name (the live server registers ``"live_server"``).
    """

    def __init__(self, session_id: str, events_path: Path, checkpoint: dict[str, Any] | None = None) -> None:
        self.health = HealthBoard(session_id)
        self.sources: dict[str, Callable[[], dict[str, Any]]] = {}
        self.event_log = EventLogCounter(events_path)
        if checkpoint:  # opening a long session reads only the events logged since its last run ended
            self.event_log.resume(checkpoint)


def metrics_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    """Flatten :func:`session_metrics` into rows of ``metric``, ``scope``, ``value``.

    Stage timings become ``stage_seconds``/``real_time_factor`` rows scoped by stage
    (``live_...`` ones come from the events of the last or current run),
    subscriber and client counters rows scoped by subscriber or client name, and
    the other numbers rows scoped ``"session"``.
    """
    rows: list[tuple[str, str, Any]] = []
    for key in ("audio_seconds", "segments", "chunks", "runs", "reruns"):
        if key in metrics:
            rows.append((key, "session", metrics[key]))
    for stage, seconds in metrics.get("stage_seconds", {}).items():
        rows.append(("stage_seconds", stage, seconds))
    for stage, factor in metrics.get("real_time_factors", {}).items():
        rows.append(("real_time_factor", stage, factor))
    events = metrics.get("events", {})
    for key in ("emitted", "logged", "dropped", "per_second"):
        if key in events:
            rows.append((f"events_{key}", "session", events[key]))
    last_run = events.get("last_run", {})
    for stage, seconds in last_run.get("stage_seconds", {}).items():
        rows.append(("live_stage_seconds", stage, seconds))
    for stage, factor in last_run.get("real_time_factors", {}).items():
        rows.append(("live_real_time_factor", stage, factor))
    for key, value in metrics.get("overrides", {}).items():
        rows.append((f"overrides_{key}", "session", value))
    for stats in metrics.get("subscribers", []):
        for key in ("delivered", "dropped", "errors", "queued"):
            rows.append((key, f"subscriber:{stats['subscriber']}", stats[key]))
    for client in metrics.get(LIVE_SERVER_SOURCE, {}).get("clients", []):
        for key in ("delivered", "dropped", "resyncs"):
            rows.append((key, f"client:{client['client']}", client[key]))
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
