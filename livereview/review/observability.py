"""What is measured about a session, and what is degraded: put together from its stores and live parts.

:func:`session_metrics` gathers, as one JSON-ready dict, what the last run wrote to
``metrics.json`` (stage seconds, real-time factors) and what is live: events
emitted, delivered and dropped per subscriber, event throughput read from
``events.jsonl``, override and rerun counts, and the figures of any component
registered in ``session.monitor.sources`` (the live server adds its clients).
:func:`session_health` lists the degraded conditions, reported and derived.

Usage
-----
>>> session.metrics()["events"]["per_second"]                    # doctest: +SKIP
>>> session.metrics_frame().query("metric == 'real_time_factor'") # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from livereview.live.health import derived_conditions, process_conditions
from livereview.live.metrics import EVENT_LOG_CHECKPOINT
from livereview.review.state import SessionState


def session_metrics(session: SessionState) -> dict[str, Any]:
    """Everything measured about ``session``: ``metrics.json`` of the last run and :func:`live_metrics`.

    Returns
    -------
    dict
        The keys of ``metrics.json`` from the last run (``audio_seconds``,
        ``stage_seconds``, ``real_time_factors``, ``segments``, ``chunks``) plus:
        ``status``; ``events`` (``emitted`` by this process's emitter, ``logged`` in
        ``events.jsonl``, ``by_kind``, ``per_second`` of the last run, ``dropped`` over
        subscribers, and ``last_run``: its events, seconds, whether it is ``running``, and
        its ``stage_seconds`` and ``real_time_factors`` so far, live during a run);
        ``subscribers`` (delivered, dropped, errors, queued per subscriber);
        ``overrides`` (records, sets, reverts, batches, users, fields in effect);
        ``runs`` and ``reruns``; ``health`` (degraded conditions); and one entry per
        registered source (``live_server``: its clients' delivered, dropped, resyncs).
    """
    stored = {k: v for k, v in session._store.read_metrics().items() if k != EVENT_LOG_CHECKPOINT}
    return stored | live_metrics(session)


def live_metrics(session: SessionState) -> dict[str, Any]:
    """The live part of :func:`session_metrics`; a failing source is reported, never raised."""
    counted = session.monitor.event_log.update()
    subscribers = session.events.stats()
    metrics = {
        "session_id": session.session_id,
        "status": session.status,
        "segments": len(session.segment_list()),
        "chunks": len(session.completed_chunks),
        "events": {
            "emitted": session.events.seq,
            "logged": counted["logged"],
            "by_kind": counted["by_kind"],
            "last_run": counted["last_run"],
            "per_second": counted["last_run"]["per_second"],
            "dropped": sum(s["dropped"] for s in subscribers),
        },
        "subscribers": subscribers,
        "overrides": session.override_feed.counts(),
        "runs": counted["runs"],
        "reruns": counted["reruns"],
        "health": session_health(session),
    }
    for name, source in list(session.monitor.sources.items()):
        try:
            metrics[name] = source()
        except Exception as error:
            metrics[name] = {"error": f"{type(error).__name__}: {error}"}
    return metrics


def session_health(session: SessionState) -> list[dict[str, Any]]:
    """Every current degraded condition of ``session``: reported, process-wide and derived.

    Returns
    -------
    list of dict
        ``key``, ``message``, ``since`` (Unix time, None for derived ones) and ``scope``;
        empty when nothing is degraded.
    """
    found = [c.to_dict() for c in (*process_conditions(), *session.monitor.health.conditions())]
    derived = derived_conditions(
        events_enabled=session.events.enabled,
        subscribers=session.events.stats(),
        status=session.status,
        error=session.metadata.get("error"),
        damage=session.metadata.get("damage", []),
    )
    reported = {c["key"] for c in found}
    found += [
        {"key": key, "message": message, "since": None, "scope": "session"}
        for key, message in derived
        if key not in reported
    ]
    return found
