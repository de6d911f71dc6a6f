"""What an operator does in the review: corrections, batches, undo and reruns, as one user and role.

Browser messages and the widget's Python methods both act through
:class:`ReviewActions`; each action reports its outcome (``request``, ``ids``, ``ok``,
``batch_id``, ``error``, ``needs_confirm``...) to a callback, and the review turns it
into a reply to the browser and a notice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd

from livereview.core.segments import OVERRIDABLE_FIELDS
from livereview.review.session import Session
from livereview.store.override_rules import ConfirmationRequiredError
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
        if name not in OVERRIDABLE_FIELDS:
            self._finish(request, [segment_id], error=f"cannot edit field {name!r}; use one of {OVERRIDABLE_FIELDS}")
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
        """One batch of the same ``fields`` on ``ids``, from Python or the browser, through :meth:`_write`."""
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

    def rerun(self, kind: str, options: dict[str, Any], *, raise_errors: bool = False) -> Rerun | None:
        """Rerun the selected rows, else the brushed time range; failures become a notice."""
        ids, span = self._selection()
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

    def _write(
        self,
        request: Any,
        ids: list[str],
        action: Callable[[], Any],
        *,
        raise_errors: bool = False,
        undo: bool = False,
    ) -> Any:
        """Run one store write, then report its outcome; errors are always reported."""
        try:
            value = action()
        except ConfirmationRequiredError as error:
            self._finish(request, ids, needs_confirm=True, message=str(error))
            if raise_errors:
                raise
            return None
        except Exception as error:
            if not isinstance(error, (ValueError, PermissionError, TypeError, KeyError)):
                logger.exception("correction by %s failed", self.user)
            self._finish(request, ids, error=f"{type(error).__name__}: {error}")
            if raise_errors:
                raise
            return None
        batch = value if isinstance(value, str) or value is None else (value[0].batch_id if value else None)
        self._finish(request, ids, batch_id=batch, undone=undo)
        return value

    def _finish(self, request: Any, ids: list[str], **outcome: Any) -> None:
        self._report({"request": request, "ids": ids, "ok": "error" not in outcome} | outcome)
