"""Who may use the live server: tokens naming a user and a role, and loopback-only access without them.

A token file holds one ``TOKEN USER ROLE`` line per token (role ``viewer``, ``editor``
or ``admin``); requests carry ``Authorization: Bearer TOKEN`` or ``?token=TOKEN``.
Without tokens the server listens on loopback only and trusts local callers to edit.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import HTTPConnection

from livereview.core.roles import EDITOR, ROLES, can_write, check_role

#: Shortest token accepted in a token file.
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: ``user`` (None when the caller names itself) and ``role``."""

    user: str | None
    role: str

    @property
    def can_edit(self) -> bool:
        return can_write(self.role)


#: The caller on a loopback server without tokens: trusted to edit, names itself.
LOCAL = Principal(None, EDITOR)


def load_tokens(path: os.PathLike[str] | str) -> dict[str, Principal]:
    """Read a token file: one ``TOKEN USER ROLE`` per line; blank lines and ``#`` comments skipped.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A malformed line, a short or repeated token, or an unknown role (with its line number).
    """
    path = Path(path)
    if not path.is_file():
        msg = f"token file not found: {path}"
        raise FileNotFoundError(msg)
    tokens: dict[str, Principal] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        where = f"token file {path} line {number}"
        if len(parts) != 3:
            msg = f"{where} has {len(parts)} fields; write 'TOKEN USER ROLE', e.g. 'k3y... ana editor'"
            raise ValueError(msg)
        token, user, role = parts
        try:
            check_role(role)
        except ValueError as error:
            msg = f"{where}: {error}"
            raise ValueError(msg) from None
        if len(token) < MIN_TOKEN_CHARS:
            msg = (
                f"{where}: token is {len(token)} characters, under {MIN_TOKEN_CHARS}; make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe())'"
            )
            raise ValueError(msg)
        if token in tokens:
            msg = f"{where} repeats a token given earlier; every token must be unique"
            raise ValueError(msg)
        tokens[token] = Principal(user, role)
    if not tokens:
        msg = f"token file {path} holds no token; write one 'TOKEN USER ROLE' line per user"
        raise ValueError(msg)
    return tokens


def as_principal(value: tuple[str, str] | Principal) -> Principal:
    principal = value if isinstance(value, Principal) else Principal(*value)
    if principal.role not in ROLES or not principal.user:
        msg = f"token maps to {value!r}; give (user, role) with a user name and a role among {ROLES}"
        raise ValueError(msg)
    return principal


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RequestError(Exception):
    """A request refused with an HTTP ``status`` and a message saying why and what to do."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def authenticate(connection: HTTPConnection, tokens: Mapping[str, Principal] | None) -> Principal:
    if tokens is None:
        return LOCAL
    header = connection.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else connection.query_params.get("token")
    if not token:
        msg = "this server needs a token: send 'Authorization: Bearer TOKEN' or ?token=TOKEN"
        raise RequestError(401, msg)
    principal = tokens.get(token)
    if principal is None:
        raise RequestError(401, "unknown token; ask the session's host for a valid one")
    return principal


def access_table(
    host: str,
    token_file: os.PathLike[str] | str | None = None,
    tokens: Mapping[str, tuple[str, str] | Principal] | None = None,
) -> dict[str, Principal] | None:
    """The tokens a server on ``host`` accepts (None: loopback, no tokens), checked before it starts.

    Raises
    ------
    FileNotFoundError, ValueError
        A missing or malformed token file (see :func:`load_tokens`).
    PermissionError
        A non-loopback ``host`` without tokens.
    """
    table = load_tokens(token_file) if token_file is not None else None
    if tokens is not None:
        table = (table or {}) | {token: as_principal(value) for token, value in tokens.items()}
    if table is None and not is_loopback(host):
        msg = (
            f"refusing to listen on {host!r} without tokens: anyone who can reach it could read and edit "
            "the session. Pass a token file (one 'TOKEN USER ROLE' line per user) or listen on 127.0.0.1"
        )
        raise PermissionError(msg)
    return table
