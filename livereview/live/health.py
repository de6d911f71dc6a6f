"""Degraded conditions: what runs in a fallback mode right now, for a banner and the log.

A condition is a short sentence under a stable key (``"live-server"``,
``"model:classifier"``, ``"subscriber:widget"``). Reporting one logs a one-line
banner at WARNING the first time (and again only when its text changes);
clearing it logs that it recovered. :func:`derived_conditions` reads the conditions
that show in a session's state directly (live events off, subscribers dropping
events or raising, a failed run); ``livereview.review.observability.session_health``
puts them together with the reported ones.

Usage
-----
>>> board = HealthBoard("game-3")
>>> board.report("live-server", "live server stopped; events are still written to events.jsonl")
>>> [c.key for c in board.conditions()]
['live-server']
>>> board.clear("live-server")
>>> board.conditions()
[]

Components that fall back for the whole process (a missing model replaced by a
simpler one) call :func:`report_degraded`; every session shows those too.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from livereview.live.emitter import LIVE_STREAM_FLAG

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Condition:
    """One degraded condition.

    Parameters
    ----------
    key : str
        Stable identifier; one condition per key.
    message : str
        What is degraded and what still works, in one sentence.
    since : float
        Unix time it was first reported.
    scope : str
        ``"session"`` or ``"process"``.
    """

    key: str
    message: str
    since: float
    scope: str = "session"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class HealthBoard:
    """The degraded conditions reported for one session (or the process), thread-safe.

    Parameters
    ----------
    label : str
        Named in the log banners (a session id, or ``"process"``).
    scope : str
        Stamped on the conditions: ``"session"`` or ``"process"``.
    """

    def __init__(self, label: str, *, scope: str = "session") -> None:
        self.label = label
        self.scope = scope
        self._lock = threading.Lock()
        self._conditions: dict[str, Condition] = {}

    def report(self, key: str, message: str) -> None:
        """Record that ``key`` is degraded; log a banner unless already known with the same text."""
        with self._lock:
            known = self._conditions.get(key)
            if known is not None and known.message == message:
                return
            since = known.since if known is not None else time.time()
            self._conditions[key] = Condition(key, message, since, self.scope)
        logger.warning("DEGRADED [%s] %s", self.label, message)

    def clear(self, key: str) -> None:
        """Record that ``key`` works again; log it when it was degraded."""
        with self._lock:
            known = self._conditions.pop(key, None)
        if known is not None:
            logger.warning("RECOVERED [%s] %s", self.label, key)

    def conditions(self) -> list[Condition]:
        """Current conditions, oldest first."""
        with self._lock:
            return sorted(self._conditions.values(), key=lambda c: (c.since, c.key))


_PROCESS = HealthBoard("process", scope="process")


def report_degraded(key: str, message: str) -> None:
    """Report a process-wide degraded condition, e.g. ``("model:classifier", "... fell back to keywords")``."""
    _PROCESS.report(key, message)


def clear_degraded(key: str) -> None:
    """Clear a process-wide condition reported with :func:`report_degraded`."""
    _PROCESS.clear(key)


def process_conditions() -> list[Condition]:
    """The process-wide conditions reported with :func:`report_degraded`, oldest first."""
    return _PROCESS.conditions()


def derived_conditions(
    *,
    events_enabled: bool,
    subscribers: list[dict[str, Any]],
    status: str,
    error: str | None,
    damage: list[dict[str, Any]] = (),
) -> list[tuple[str, str]]:
    """Conditions read off a session's state: live events off, subscribers dropping or raising, a failed run.

    Parameters
    ----------
    events_enabled : bool
        Whether the session's emitter emits.
    subscribers : list of dict
        The emitter's per-subscriber stats (``subscriber``, ``dropped``, ``errors``).
    status : str
        The run status.
    error : str or None
        The failed run's error.
    damage : list of dict
        Damaged stretches of the recording (``time``, ``byte_offset``, ``message``).

    Returns
    -------
    list of (key, message)
    """
    derived = []
    if not events_enabled:
        derived.append(("live-events", f"live events are off ({LIVE_STREAM_FLAG}); results are still saved"))
    for stats in subscribers:
        name = stats["subscriber"]
        if stats["dropped"]:
            derived.append(
                (
                    f"subscriber:{name}",
                    f"subscriber {name!r} could not keep up and missed {stats['dropped']} events; it should resync",
                )
            )
        if stats["errors"]:
            derived.append(
                (f"subscriber-errors:{name}", f"subscriber {name!r} raised on {stats['errors']} events (see the log)")
            )
    if damage:
        first = damage[0]
        where = f"{first['time']:.1f} s" + (f" (byte {first['byte_offset']:,})" if first.get("byte_offset") else "")
        more = f", and {len(damage) - 1} more place(s)" if len(damage) > 1 else ""
        derived.append(
            (
                "recording",
                f"the recording is damaged at {where}: {first['message']}{more}; the results cover what could "
                "be decoded (status partial)",
            )
        )
    if status == "failed":
        failure = error or "unknown error"
        derived.append(("run", f"the last run failed ({failure}); run again to resume from the last completed chunk"))
    return derived
