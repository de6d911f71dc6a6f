"""Who may do what: the roles of operators, checked the same way by the store, the server and the review.

``viewer`` reads; ``editor`` and ``admin`` also correct segments and run reruns.

Usage
-----
>>> can_write("editor"), can_write("viewer")
(True, False)
>>> check_writer("ana", "viewer", "undo")
Traceback (most recent call last):
...
PermissionError: cannot undo: role 'viewer' is read-only; ask a user with role ('editor', 'admin')
"""

from __future__ import annotations

VIEWER, EDITOR, ADMIN = "viewer", "editor", "admin"
#: Roles that may write corrections and run reruns.
WRITE_ROLES = (EDITOR, ADMIN)
ROLES = (VIEWER, *WRITE_ROLES)


def check_role(role: str, *, invalid: type[ValueError] = ValueError) -> str:
    """``role`` itself when it is one of :data:`ROLES`; else ``invalid`` naming them."""
    if role not in ROLES:
        msg = f"unknown role {role!r}; use one of {ROLES}"
        raise invalid(msg)
    return role


def can_write(role: str) -> bool:
    """Whether ``role`` may correct segments and run reruns."""
    return role in WRITE_ROLES


def check_writer(user: str, role: str, what: str, *, invalid: type[ValueError] = ValueError) -> None:
    """Refuse ``what`` unless ``user`` is named and ``role`` may write.

    Raises
    ------
    PermissionError
        The role is read-only.
    invalid (ValueError by default)
        The role is unknown or the user name is empty.
    """
    try:
        check_role(role, invalid=invalid)
    except ValueError as error:
        msg = f"cannot {what}: {error}"
        raise invalid(msg) from None
    if not can_write(role):
        msg = f"cannot {what}: role {role!r} is read-only; ask a user with role {WRITE_ROLES}"
        raise PermissionError(msg)
    if not isinstance(user, str) or not user.strip():
        msg = f"cannot {what}: user must be a non-empty name, got {user!r}"
        raise invalid(msg)
