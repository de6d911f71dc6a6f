"""Several operators on one recorded session: every correction announced once, conflicts told.

A :class:`OverrideFeed` follows a session's override log. Each poll reads the
lines appended since the last one, whoever wrote them (this session object,
another one in this process, another kernel), and hands each new batch to a
callback together with the conflicts it causes: a field that another user had
corrected and this batch sets again. The log's last write wins (see
:mod:`livereview.store.overrides`); the conflict note tells the earlier writer.

The session polls after each of its own writes, so its corrections are
announced at once; :meth:`OverrideFeed.watch` adds a background poll (a
``stat`` of the log per interval) for the writes of others.

Usage
-----
>>> session.watch_overrides(interval=0.5)          # doctest: +SKIP
>>> session.events.subscribe(print)                # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from livereview.core.jsonl import JsonlTail
from livereview.store.overrides import REVERT, SET, OverrideRecord

logger = logging.getLogger(__name__)

#: Receives one batch's records and the extra event data (``conflicts``, ``superseded_by``).
Announce = Callable[[list[OverrideRecord], dict[str, Any]], Any]


class OverrideFeed:
    """Announce every batch of an override log once, in log order, with the conflicts it causes.

    Parameters
    ----------
    log_path : path
        ``<session_dir>/overrides/overrides.jsonl``.
    announce : callable
        ``announce(records, data)`` per new batch; ``data`` holds ``conflicts`` (a list
        of dicts: ``segment_id``, ``field``, ``value``, ``superseded_user``,
        ``superseded_value``, ``superseded_seq``) and ``superseded_by`` when the batch
        overwrote another user's correction.
    start_seq : int
        Records up to this ``seq`` are history: read (for conflicts) but not announced.
    """

    def __init__(self, log_path: Path, announce: Announce, *, start_seq: int = 0) -> None:
        self.log_path = Path(log_path)
        self._announce = announce
        self._lock = threading.Lock()
        self._announced_seq = start_seq
        self._tail = JsonlTail(self.log_path)
        self._forget()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.conflicts = 0

    def _forget(self) -> None:
        """Forget what was folded: the log is read again from its start (announcing nothing twice)."""
        self._in_effect: dict[tuple[str, str], OverrideRecord] = {}
        self._ops: Counter[str] = Counter()
        self._batch_ids: set[str] = set()
        self._users: set[str] = set()

    @property
    def watching(self) -> bool:
        """Whether the background poll runs."""
        return self._thread is not None and self._thread.is_alive()

    def poll(self) -> int:
        """Announce the batches appended since the last poll; return how many records they hold."""
        with self._lock:
            announced = 0
            for batch in self._read_batches():
                data = self._conflicts(batch)
                announced += len(batch)
                try:
                    self._announce(batch, data)
                except Exception:
                    logger.exception("announcing override batch %s failed; it is on disk", batch[0].batch_id)
            return announced

    def counts(self) -> dict[str, int]:
        """Records, sets, reverts, batches, users and fields in effect over the whole log (polls first),
        and the ``conflicts`` (corrections replacing another user's) announced since this feed started."""
        self.poll()
        with self._lock:
            return {
                "records": sum(self._ops.values()),
                "sets": self._ops[SET],
                "reverts": self._ops[REVERT],
                "batches": len(self._batch_ids),
                "users": len(self._users),
                "in_effect": sum(not record.restores_base for record in self._in_effect.values()),
                "conflicts": self.conflicts,
            }

    def watch(self, interval: float = 0.5) -> OverrideFeed:
        """Poll every ``interval`` seconds on a daemon thread until :meth:`stop`; returns ``self``."""
        if interval <= 0:
            msg = f"override poll interval must be positive, got {interval} s; use e.g. 0.5"
            raise ValueError(msg)
        if self.watching:
            return self
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._watch, args=(interval,), name="livereview-override-watch", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background poll (no-op when not watching)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None

    def _watch(self, interval: float) -> None:
        failed = False
        while not self._stop.wait(interval):
            try:
                self.poll()
                failed = False
            except Exception:
                if not failed:
                    logger.exception("polling the override log %s failed; retrying", self.log_path)
                failed = True

    def _read_batches(self) -> list[list[OverrideRecord]]:
        """New records grouped by batch, in log order; history only updates the fields in effect."""
        lines = self._tail.read()
        if self._tail.restarted:  # a torn tail was cut off: read again, announcing nothing twice
            self._forget()
        batches: list[list[OverrideRecord]] = []
        for line in lines:
            try:
                record = OverrideRecord.from_dict(line)
            except (ValueError, TypeError) as error:
                logger.warning("override log %s holds a line that is no correction (%s); skipped", self.log_path, error)
                continue
            self._ops[record.op] += 1
            self._batch_ids.add(record.batch_id)
            self._users.add(record.user)
            if record.seq <= self._announced_seq:
                self._in_effect[(record.segment_id, record.field)] = record
                continue
            self._announced_seq = record.seq
            if batches and batches[-1][0].batch_id == record.batch_id:
                batches[-1].append(record)
            else:
                batches.append([record])
        return batches

    def _conflicts(self, batch: list[OverrideRecord]) -> dict[str, Any]:
        """Fold ``batch`` into the fields in effect; the corrections of other users it replaced."""
        conflicts = []
        for record in batch:
            key = (record.segment_id, record.field)
            earlier = self._in_effect.get(key)
            self._in_effect[key] = record
            if earlier is None or earlier.user == record.user or earlier.restores_base or record.op != SET:
                continue
            conflicts.append(
                {
                    "segment_id": record.segment_id,
                    "field": record.field,
                    "value": record.value,
                    "superseded_user": earlier.user,
                    "superseded_value": earlier.value,
                    "superseded_seq": earlier.seq,
                }
            )
        if not conflicts:
            return {}
        self.conflicts += len(conflicts)
        users = sorted({c["superseded_user"] for c in conflicts})
        logger.info(
            "%s replaced %d correction(s) by %s (last write wins)", batch[0].user, len(conflicts), ", ".join(users)
        )
        return {"conflicts": conflicts, "superseded_by": batch[0].user, "superseded_users": users}
