"""Who is at the station: the engineer password, roles and what each role may do.

One engineer password per station, stored as an scrypt hash in
``<user config dir>/engineer.json`` (``$SOCKETEER_CONFIG_DIR`` overrides the folder).
Operators need no password; they identify themselves by name for the production log.

This keeps honest people honest on a shared workstation. It is not protection against
somebody with write access to the config folder: deleting the file removes the password.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import os
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from app.core.errors import InputError
from app.core.fileio import write_atomic

ENV_CONFIG_DIR = "SOCKETEER_CONFIG_DIR"
PASSWORD_FILE = "engineer.json"
PASSWORD_FORMAT = "socketeer-engineer-password/1"
MIN_PASSWORD_LENGTH = 6

#: scrypt cost for new hashes (about 16 MiB and tens of milliseconds per check).
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_DKLEN = 32
SALT_BYTES = 16
# Stored parameters are read from a file; bound them so a crafted file cannot make a
# check take minutes or gigabytes.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16


class PasswordError(InputError):
    """A password was refused: too short, or the current one is wrong or missing."""


def config_dir() -> Path:
    """``$SOCKETEER_CONFIG_DIR``, else the platform's user config folder for socketeer."""
    env = os.environ.get(ENV_CONFIG_DIR)
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir("socketeer", appauthor=False))


def _encode(password: str) -> bytes:
    # NFC so that the same password typed on two keyboards/OSes hashes the same.
    return unicodedata.normalize("NFC", password).encode("utf-8")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    return hashlib.scrypt(_encode(password), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=maxmem)


def _write_private(path: Path, data: bytes) -> None:
    """Atomic write; the file is 0o600 where the OS has modes."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(path, data, mode=0o600)


class RoleStore:
    """The station's engineer password (scrypt, random salt, parameters stored with it)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else config_dir() / PASSWORD_FILE

    def _record(self) -> dict[str, Any] | None:
        """The stored record, None when no password is set; InputError when it is damaged
        (a damaged file must not read as "no password", which would let anyone set one)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise InputError(f"{self.path}: cannot read the engineer password ({err})") from None
        try:
            doc = json.loads(raw)
            ok = (
                isinstance(doc, dict)
                and doc.get("format") == PASSWORD_FORMAT
                and doc.get("kdf") == "scrypt"
                and all(
                    isinstance(doc.get(k), int) and not isinstance(doc.get(k), bool)
                    for k in ("n", "r", "p", "dklen")
                )
                and 2 <= doc["n"] <= _MAX_N
                and doc["n"] & (doc["n"] - 1) == 0
                and 1 <= doc["r"] <= _MAX_R
                and 1 <= doc["p"] <= _MAX_P
                and 16 <= doc["dklen"] <= 64
                and len(bytes.fromhex(doc["salt"])) >= 8
                and len(bytes.fromhex(doc["hash"])) == doc["dklen"]
            )
        except (ValueError, TypeError, KeyError):
            ok = False
        if not ok:
            raise InputError(
                f"{self.path}: the engineer password file is damaged; restore it or delete it"
                " and set a new password"
            )
        return doc

    def has_password(self) -> bool:
        return self._record() is not None

    def verify(self, password: str) -> bool:
        """True when ``password`` is the engineer password (False when none is set)."""
        doc = self._record()
        if doc is None:
            return False
        salt = bytes.fromhex(doc["salt"])
        key = _scrypt(password, salt, doc["n"], doc["r"], doc["p"], doc["dklen"])
        return hmac.compare_digest(key, bytes.fromhex(doc["hash"]))

    def set_password(self, new: str, old: str | None = None) -> None:
        """Set or change the password; changing it needs the current one."""
        if len(new) < MIN_PASSWORD_LENGTH:
            raise PasswordError(
                f"the engineer password needs at least {MIN_PASSWORD_LENGTH} characters"
            )
        if self.has_password():
            if old is None:
                raise PasswordError("changing the engineer password needs the current one")
            if not self.verify(old):
                raise PasswordError("the current engineer password is wrong")
        salt = secrets.token_bytes(SALT_BYTES)
        key = _scrypt(new, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN)
        doc = {
            "format": PASSWORD_FORMAT,
            "kdf": "scrypt",
            "n": SCRYPT_N,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "dklen": SCRYPT_DKLEN,
            "salt": salt.hex(),
            "hash": key.hex(),
        }
        _write_private(self.path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))


class Role(enum.Enum):
    ENGINEER = "engineer"
    OPERATOR = "operator"


ACTIONS = (
    "edit_job",
    "lock_job",
    "open_unlocked_job",
    "open_locked_job",
    "run",
    "change_settings",
    "void_serial",
)
_OPERATOR_MAY = frozenset({"run", "open_locked_job"})


def can(role: Role, action: str) -> bool:
    """Whether ``role`` may do ``action`` (one of ACTIONS; anything else is a bug)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
    return role is Role.ENGINEER or action in _OPERATOR_MAY


@dataclass(frozen=True)
class RoleChange:
    """Passed to every ``Session.on_change`` callback."""

    old_role: Role
    new_role: Role
    operator_name: str | None


class Session:
    """The role at the station now. Starts as operator; callbacks hear every change."""

    def __init__(
        self,
        store: RoleStore | None = None,
        role: Role = Role.OPERATOR,
        operator_name: str | None = None,
    ) -> None:
        self.store = store if store is not None else RoleStore()
        self.role = role
        self.operator_name = operator_name
        self.on_change: list[Callable[[RoleChange], None]] = []

    def can(self, action: str) -> bool:
        return can(self.role, action)

    def switch_to_engineer(self, password: str) -> bool:
        """Become engineer if ``password`` is right; False (and no change) otherwise."""
        if not self.store.verify(password):
            return False
        self._set(Role.ENGINEER, self.operator_name)
        return True

    def switch_to_operator(self, name: str) -> None:
        name = name.strip()
        if not name:
            raise InputError("an operator needs a name (it goes into the production log)")
        self._set(Role.OPERATOR, name)

    def _set(self, role: Role, operator_name: str | None) -> None:
        change = RoleChange(self.role, role, operator_name)
        self.role = role
        self.operator_name = operator_name
        for callback in list(self.on_change):
            callback(change)
