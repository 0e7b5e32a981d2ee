"""Engineer password, roles and the permission table."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from app.core.errors import InputError
from app.core.roles import (
    ACTIONS,
    PASSWORD_FILE,
    PasswordError,
    Role,
    RoleChange,
    RoleStore,
    Session,
    can,
    config_dir,
)


@pytest.fixture
def store(tmp_path: Path) -> RoleStore:
    return RoleStore(tmp_path / "cfg" / PASSWORD_FILE)


def test_no_password_at_first(store: RoleStore) -> None:
    assert not store.has_password()
    assert not store.verify("anything")


def test_set_verify_and_change(store: RoleStore) -> None:
    store.set_password("s3cret!")
    assert store.has_password()
    assert store.verify("s3cret!")
    assert not store.verify("s3cret")
    assert not store.verify("")
    with pytest.raises(PasswordError, match="needs the current one"):
        store.set_password("another1")
    with pytest.raises(PasswordError, match="current engineer password is wrong"):
        store.set_password("another1", "wrong-old")
    assert store.verify("s3cret!")
    store.set_password("another1", "s3cret!")
    assert store.verify("another1") and not store.verify("s3cret!")
    # a fresh store object reads the same file
    assert RoleStore(store.path).verify("another1")


def test_minimum_length(store: RoleStore) -> None:
    with pytest.raises(PasswordError, match="at least 6 characters"):
        store.set_password("12345")
    assert not store.has_password()
    store.set_password("123456")


def test_unicode_passwords_are_normalized(store: RoleStore) -> None:
    store.set_password("Pr\u00fcfer-1")  # precomposed ü
    assert store.verify("Pru\u0308fer-1")  # u + combining diaeresis


def test_stored_record_is_scrypt_with_salt_and_no_plain_text(store: RoleStore) -> None:
    store.set_password("s3cret!")
    first = json.loads(store.path.read_text())
    assert first["kdf"] == "scrypt"
    assert (first["n"], first["r"], first["p"], first["dklen"]) == (2**14, 8, 1, 32)
    assert len(bytes.fromhex(first["salt"])) == 16 and len(bytes.fromhex(first["hash"])) == 32
    assert "s3cret" not in store.path.read_text()
    store.set_password("s3cret!", "s3cret!")
    second = json.loads(store.path.read_text())
    assert second["salt"] != first["salt"] and second["hash"] != first["hash"]
    assert sorted(p.name for p in store.path.parent.iterdir()) == [PASSWORD_FILE]


@pytest.mark.skipif(sys.platform == "win32", reason="no POSIX file modes")
def test_file_mode_is_private(store: RoleStore) -> None:
    store.set_password("s3cret!")
    assert os.stat(store.path).st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "text",
    ["", "{", "[]", '{"format": "socketeer-engineer-password/1", "kdf": "md5"}'],
)
def test_damaged_file_is_not_taken_for_no_password(store: RoleStore, text: str) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text(text)
    with pytest.raises(InputError, match="damaged"):
        store.has_password()
    with pytest.raises(InputError, match="damaged"):
        store.set_password("new-password")


def test_absurd_stored_parameters_are_refused(store: RoleStore) -> None:
    store.set_password("s3cret!")
    doc = json.loads(store.path.read_text())
    doc["n"] = 2**30
    store.path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="damaged"):
        store.verify("s3cret!")


def test_default_location_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCKETEER_CONFIG_DIR", str(tmp_path / "conf"))
    assert config_dir() == tmp_path / "conf"
    assert RoleStore().path == tmp_path / "conf" / "engineer.json"
    monkeypatch.delenv("SOCKETEER_CONFIG_DIR")
    assert RoleStore().path.name == "engineer.json"
    assert "socketeer" in str(RoleStore().path.parent).lower()


def test_permission_table() -> None:
    engineer = {a for a in ACTIONS if can(Role.ENGINEER, a)}
    operator = {a for a in ACTIONS if can(Role.OPERATOR, a)}
    assert engineer == set(ACTIONS)
    assert operator == {"run", "open_locked_job"}
    for action in ("edit_job", "lock_job", "open_unlocked_job", "change_settings", "void_serial"):
        assert not can(Role.OPERATOR, action)
    with pytest.raises(ValueError, match="unknown action"):
        can(Role.ENGINEER, "launch_missiles")


def test_session_switches_and_reports_every_change(store: RoleStore) -> None:
    store.set_password("s3cret!")
    session = Session(store)
    seen: list[RoleChange] = []
    session.on_change.append(seen.append)
    assert session.role is Role.OPERATOR and not session.can("edit_job")

    session.switch_to_operator("  Dana ")
    assert session.operator_name == "Dana"
    assert not session.switch_to_engineer("wrong")
    assert session.role is Role.OPERATOR
    assert session.switch_to_engineer("s3cret!")
    assert session.role is Role.ENGINEER and session.can("lock_job")
    session.switch_to_operator("Eve")
    assert seen == [
        RoleChange(Role.OPERATOR, Role.OPERATOR, "Dana"),
        RoleChange(Role.OPERATOR, Role.ENGINEER, "Dana"),
        RoleChange(Role.ENGINEER, Role.OPERATOR, "Eve"),
    ]
    with pytest.raises(InputError, match="needs a name"):
        session.switch_to_operator("  ")
    assert len(seen) == 3


def test_no_engineer_without_a_password(store: RoleStore) -> None:
    session = Session(store)
    assert not session.switch_to_engineer("")
    assert session.role is Role.OPERATOR
