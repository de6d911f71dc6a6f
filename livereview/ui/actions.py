"""What an operator does in the review: corrections, boundaries, batches, undo, speaker mapping
and reruns, as one user and role.

Browser messages and the widget's Python methods both act through
:class:`ReviewActions`; each action reports its outcome (``request``, ``ids``, ``ok``,
``batch_id``, ``error``, ``needs_confirm``...) to a callback, and the review turns it
into a reply to the browser and a notice in words. One row is corrected at once; a
value set on several rows waits for a confirmation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd

from livereview.core.corrections import VALUE_FIELDS, base_ids, split_point
from livereview.core.roles import check_writer
from livereview.core.segments import OVERRIDABLE_FIELDS, segments_to_frame
from livereview.review.session import Session
from livereview.review.view import merged_view
from livereview.store.override_rules import ConfirmationRequiredError, OverrideError
from livereview.store.rerun_log import RERUN_KINDS, Rerun

logger = logging.getLogger(__name__)


class ReviewActions:
    """Corrections and reruns of one session as one operator, each reporting its outcome.

    Parameters
    ----------
    session : Session
        The session corrected.
    user, role : str
        Who acts, as what (kept with every correction).
    report : callable
        ``report(outcome)`` after every correction, batch or undo, failed or not.
    notify : callable
        ``notify(level, text)`` for what is told as a notice only (a failed rerun).
    selection : callable
        Returns the selected segment ids and the brushed ``(start, end)`` or None.
    """

    def __init__(
        self,
        session: Session,
        user: str,
        role: str,
        *,
        report: Callable[[dict[str, Any]], Any],
        notify: Callable[[str, str], Any],
        selection: Callable[[], tuple[list[str], tuple[float, float] | None]],
    ) -> None:
        self.session = session
        self.user = user
        self.role = role
        self._report = report
        self._notify = notify
        self._selection = selection

    def browser_edit(self, request: Any, content: dict[str, Any]) -> None:
        segment_id, name = str(content.get("id")), content.get("field")
        if name not in VALUE_FIELDS:
            self._finish(request, [segment_id], error=f"cannot edit field {name!r}; use one of {VALUE_FIELDS}")
            return
        self.edit(
            request,
            segment_id,
            {name: content.get("value")},
            reason=content.get("reason") or None,
            allow_new_speaker=bool(content.get("new_speaker")),
        )

    def browser_batch(self, request: Any, content: dict[str, Any]) -> None:
        ids = [str(i) for i in content.get("ids") or []]
        name = content.get("field")
        if name not in OVERRIDABLE_FIELDS or not ids:
            error = f"cannot apply field {name!r} to {len(ids)} segments; select rows and one of {OVERRIDABLE_FIELDS}"
            self._finish(request, ids, error=error)
            return
        self.apply(
            request,
            ids,
            {name: content.get("value")},
            confirm=bool(content.get("confirm")),
            reason=content.get("reason") or None,
            allow_new_speaker=bool(content.get("new_speaker")),
        )

    def edit(
        self,
        request: Any,
        segment_id: str,
        fields: dict[str, Any],
        *,
        reason: str | None,
        allow_new_speaker: bool,
        raise_errors: bool = False,
    ) -> Any:
        """Correct fields of one segment, from Python or the browser, through :meth:`_write`."""
        return self._write(
            request,
            [segment_id],
            lambda: self.session.set_override(
                segment_id,
                user=self.user,
                role=self.role,
                reason=reason,
                allow_new_speaker=allow_new_speaker,
                **fields,
            ),
            raise_errors=raise_errors,
        )

    def apply(
        self,
        request: Any,
        ids: list[str],
        fields: dict[str, Any],
        *,
        confirm: bool,
        reason: str | None,
        allow_new_speaker: bool,
        raise_errors: bool = False,
    ) -> Any:
        """One batch of the same ``fields`` on ``ids``, from Python or the browser, through :meth:`_write`.

        A single row is corrected at once, as :meth:`edit` does; several need ``confirm``.
        """
        if len(ids) == 1:
            return self.edit(
                request, ids[0], fields, reason=reason, allow_new_speaker=allow_new_speaker, raise_errors=raise_errors
            )
        frame = pd.DataFrame({name: [value] * len(ids) for name, value in fields.items()}, index=ids)
        return self._write(
            request,
            ids,
            lambda: self.session.apply_overrides(
                frame,
                user=self.user,
                confirm=confirm,
                reason=reason,
                role=self.role,
                allow_new_speaker=allow_new_speaker,
            ),
            raise_errors=raise_errors,
            details={"fields": fields},
        )

    def undo(self, request: Any, *, raise_errors: bool = False) -> str | None:
        """Revert this user's last batch, from Python or the browser, through :meth:`_write`."""
        return self._write(
            request,
            [],
            lambda: self.session.undo_last_batch(self.user, role=self.role),
            raise_errors=raise_errors,
            undo=True,
        )

    def split(self, request: Any, segment_id: str, word: int, *, raise_errors: bool = False) -> Any:
        """Split a row before its word ``word`` (0-based), at that word's start time."""
        try:
            point = split_point(self._standing_row(segment_id), int(word))
        except (KeyError, ValueError, TypeError) as error:
            self._finish(request, [segment_id], error=f"cannot split {segment_id!r}: {error}")
            if raise_errors:
                raise
            return None
        return self.edit(
            request, segment_id, {"split": point}, reason=None, allow_new_speaker=False, raise_errors=raise_errors
        )

    def merge(self, request: Any, first: str, second: str, *, raise_errors: bool = False) -> Any:
        """Merge row ``second`` into row ``first``, the row right before it (same speaker)."""
        return self.edit(
            request, second, {"merged_into": first}, reason=None, allow_new_speaker=False, raise_errors=raise_errors
        )

    def map_speaker(self, speaker: str, player: str, *, raise_errors: bool = False) -> None:
        """Say which player a diarized speaker is (:meth:`Session.set_speaker_map`); a notice tells it."""
        try:
            check_writer(self.user, self.role, f"map speaker {speaker!r}", invalid=OverrideError)
            speaker, player = str(speaker).strip(), str(player).strip()
            if not speaker or not player:
                msg = f"give a speaker and a player to map it to, got {speaker!r} and {player!r}"
                raise OverrideError(msg)
            self.session.set_speaker_map({speaker: player})
        except (OverrideError, PermissionError, OSError) as error:
            self._notify("error", f"{type(error).__name__}: {error}")
            if raise_errors:
                raise
            return
        self._notify("info", f"{self.user} mapped speaker {speaker} to {player}.")

    def rerun(self, kind: str, options: dict[str, Any], *, raise_errors: bool = False) -> Rerun | None:
        """Rerun the selected rows (the model's segments they come from), else the brushed time range.

        Failures become a notice.
        """
        ids, span = self._selection()
        ids = list(dict.fromkeys(sid for row_id in ids for sid in base_ids(row_id)))
        try:
            if kind not in RERUN_KINDS:
                msg = f"unknown rerun {kind!r}; use one of {RERUN_KINDS}"
                raise ValueError(msg)
            if not ids and span is None:
                msg = f"nothing to {kind}: select rows or brush a time range on the timeline first"
                raise ValueError(msg)
            selection = {"selection": ids} if ids else {"time": span}
            run = getattr(self.session, kind)
            rerun = run(**selection, user=self.user, role=self.role, progress=False, **options)
        except Exception as error:
            self._notify("error", f"{kind} failed, nothing changed: {type(error).__name__}: {error}")
            if raise_errors:
                raise
            return None
        return rerun

    def _standing_row(self, segment_id: str) -> pd.Series:
        """A row as the merged view shows it, word timings included (built from its segments only)."""
        wanted = set(base_ids(segment_id))
        segments = [s for s in self.session.segment_list() if s.segment_id in wanted]
        view = merged_view(segments_to_frame(segments), self.session.corrected_values())
        if segment_id not in view.index:
            msg = f"no row {segment_id!r} in this session now; it may have been split or merged"
            raise KeyError(msg)
        return view.loc[segment_id]

    def _write(
        self,
        request: Any,
        ids: list[str],
        action: Callable[[], Any],
        *,
        raise_errors: bool = False,
        undo: bool = False,
        details: dict[str, Any] | None = None,
    ) -> Any:
        """Run one store write, then report its outcome (with ``details``); errors are always reported."""
        details = details or {}
        try:
            value = action()
        except ConfirmationRequiredError as error:
            self._finish(request, ids, needs_confirm=True, message=str(error), **details)
            if raise_errors:
                raise
            return None
        except Exception as error:
            if not isinstance(error, (ValueError, PermissionError, TypeError, KeyError)):
                logger.exception("correction by %s failed", self.user)
            self._finish(request, ids, error=f"{type(error).__name__}: {error}", **details)
            if raise_errors:
                raise
            return None
        batch = value if isinstance(value, str) or value is None else (value[0].batch_id if value else None)
        self._finish(request, ids, batch_id=batch, undone=undo, **details)
        return value

    def _finish(self, request: Any, ids: list[str], **outcome: Any) -> None:
        self._report({"request": request, "ids": ids, "ok": "error" not in outcome} | outcome)
