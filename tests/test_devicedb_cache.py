"""The validated-database cache: used while nothing changed, rebuilt when anything the
database is made from changes, never trusted when damaged, never holding an invalid
database, and never in the way of `devices validate`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from app.cli import main
from app.devicedb import cache, load_database, loader
from app.devicedb.loader import DeviceDbInvalidError

SMALL_DB = Path(__file__).parent / "data" / "devicedb" / "installed"


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the full reads-and-validations load_database does."""
    count: list[int] = []
    real = loader.check_layers

    def counted(layers):
        count.append(1)
        return real(layers)

    monkeypatch.setattr(loader, "check_layers", counted)
    return count


def overlay_entry(folder: Path, part: str) -> Path:
    doc = json.loads((SMALL_DB / "i2c_eeprom" / "microchip.json").read_text())
    doc["devices"] = [dict(doc["devices"][0], id=f"acme.{part.lower()}", part=part)]
    path = folder / "mine.json"
    path.write_text(json.dumps(doc))
    return path


def test_an_unchanged_database_comes_from_the_cache(tmp_path: Path, validations) -> None:
    first = load_database(SMALL_DB, tmp_path)
    second = load_database(SMALL_DB, tmp_path)
    assert len(validations) == 1
    assert [d.id for d in second] == [d.id for d in first]
    assert second.get(first.devices[0].id) == first.devices[0]


def test_a_cached_database_builds_only_the_devices_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command that programs one part unpickles one entry: lookups, searches and
    identification by ID run on the cached index."""
    from app.devicedb import models

    full = load_database(SMALL_DB, tmp_path)
    first, last = full.devices[0], full.devices[-1]  # built now (it may be cached too)
    built: list[str] = []
    real = models._unpickle_device

    def counted(values):
        built.append(values["id"])
        return real(values)

    monkeypatch.setattr(models, "_unpickle_device", counted)
    cached = load_database(SMALL_DB, tmp_path)
    assert built == [] and len(cached) == len(full)
    assert cached.get(last.id) == last and built == [last.id]
    assert cached.get(last.id) is cached.get(last.id.upper())  # built once
    assert [d.id for d in cached.search(first.part)] == [d.id for d in full.search(first.part)]
    assert len(built) < len(full)
    assert [d.id for d in cached] == [d.id for d in full]  # everything, when iterated
    assert sorted(built) == sorted(d.id for d in full)


def test_a_changed_overlay_file_rebuilds_it(tmp_path: Path, validations) -> None:
    overlay_entry(tmp_path, "ONE")
    assert "acme.one" in load_database(SMALL_DB, tmp_path)
    path = overlay_entry(tmp_path, "TWO")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    database = load_database(SMALL_DB, tmp_path)
    assert "acme.two" in database and "acme.one" not in database
    assert len(validations) == 2


def test_a_damaged_cache_is_ignored(tmp_path: Path, validations) -> None:
    load_database(SMALL_DB, tmp_path)
    before = len(validations)  # 0 when another test already cached this database
    for stale in cache.cache_dir().glob("devicedb-*.pickle"):
        stale.write_bytes(b"not a pickle")
    assert len(load_database(SMALL_DB, tmp_path)) > 0
    assert len(validations) == before + 1


def test_a_damaged_device_entry_is_read_again_when_first_asked_for(
    tmp_path: Path, validations
) -> None:
    """The devices of a cached database are unpickled when asked for, after the load:
    one that cannot be is read from the files again (and the entry dropped), not an
    error."""
    import pickle

    from app.devicedb.database import DeviceDatabase, _restore

    wanted = load_database(SMALL_DB, tmp_path).devices[-1]
    key = cache.cache_key(layer_roots(tmp_path))
    good = pickle.loads((cache.cache_dir() / f"devicedb-{key}.pickle").read_bytes())
    assert isinstance(good, DeviceDatabase)
    blobs = list(good._shelf.blobs())
    blobs[-1] = blobs[-1][: len(blobs[-1]) // 2]  # truncated
    damaged = _restore(tuple(blobs), good._index, good.packages)
    (cache.cache_dir() / f"devicedb-{key}.pickle").write_bytes(pickle.dumps(damaged))
    before = len(validations)
    database = load_database(SMALL_DB, tmp_path)
    assert len(validations) == before  # the load itself is fine
    assert database.get(wanted.id) == wanted
    assert len(validations) == before + 1  # read again at the damaged entry
    assert not (cache.cache_dir() / f"devicedb-{key}.pickle").exists()


def layer_roots(overlay: Path) -> list[Path]:
    from app.devicedb.validation import default_layers

    return [root for layer in default_layers(SMALL_DB, overlay, True) for root in layer.roots]


def test_an_invalid_database_is_never_cached(tmp_path: Path, validations) -> None:
    path = overlay_entry(tmp_path, "BAD")
    doc = json.loads(path.read_text())
    doc["devices"][0]["size_bytes"] = -1
    path.write_text(json.dumps(doc))
    for _ in range(2):
        with pytest.raises(DeviceDbInvalidError):
            load_database(SMALL_DB, tmp_path)
    assert len(validations) == 2


def test_devices_validate_always_validates(
    validations, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.commands import devices

    checked: list[int] = []
    real = devices.check_installed
    monkeypatch.setattr(devices, "check_installed", lambda: checked.append(1) or real())
    load_database()
    assert main(["devices", "validate"]) == 0
    assert main(["devices", "validate"]) == 0
    assert checked == [1, 1]


def test_one_entry_serves_every_working_folder(
    tmp_path: Path, validations, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A launcher starts in $HOME, a terminal in a job folder: neither rebuilds the cache
    the other made, and a relative database path still names the same files."""
    overlay_entry(tmp_path, "ONE")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(SMALL_DB.parent)
    first = load_database(Path("installed"), tmp_path)
    monkeypatch.chdir(tmp_path / "elsewhere")
    second = load_database(SMALL_DB, tmp_path)
    assert len(validations) == 1 and second.get("acme.one") == first.get("acme.one")
    assert Path(second.get("acme.one").source_file) == tmp_path / "mine.json"
    monkeypatch.chdir(tmp_path)  # shown relative to where the command runs
    assert second.get("acme.one").to_json()["source_file"] == "mine.json"
    # the same relative path from another folder is another database, not a stale hit
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(DeviceDbInvalidError):
        load_database(Path("installed"), tmp_path)


def test_the_cache_holds_only_classes_its_key_stamps() -> None:
    """The key stamps app/devicedb's modules instead of the Socketeer version: that is
    sound only while every class in the pickle is defined there."""
    import io
    import pickle

    modules: set[str] = set()

    class Recording(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            modules.add(module)
            return super().find_class(module, name)

    database = load_database(Path(__file__).parents[1] / "device_db", use_overlay=False)
    restored = Recording(io.BytesIO(pickle.dumps(database, protocol=5))).load()
    for blob in restored._shelf.blobs():  # each device is pickled on its own
        Recording(io.BytesIO(blob)).load()
    assert "app.devicedb.models" in modules
    stamped = {f"app.devicedb.{p.stem}" for p in Path(cache.__file__).parent.glob("*.py")}
    outside = {m for m in modules if m not in stamped and m not in ("builtins", "enum")}
    assert not outside, f"classes from modules the cache key does not stamp: {outside}"


def test_the_cache_keeps_a_few_databases_and_drops_the_least_recently_used(
    tmp_path: Path, validations
) -> None:
    """With and without the overlay (the window and a test run, say) both stay cached."""
    overlays = []
    for name in "ABCDE":
        folder = tmp_path / name
        folder.mkdir()
        overlay_entry(folder, f"PART{name}")
        overlays.append(folder)
    for folder in overlays[:2]:
        load_database(SMALL_DB, folder)
    for folder in overlays[:2]:  # both still cached
        load_database(SMALL_DB, folder)
    assert len(validations) == 2
    load_database(SMALL_DB, overlays[0])  # A is now the most recently used
    for folder in overlays[2:]:
        load_database(SMALL_DB, folder)
    assert len(list(cache.cache_dir().glob("devicedb-*.pickle"))) == cache.KEEP
    load_database(SMALL_DB, overlays[0])  # kept: used recently
    assert len(validations) == 5
    load_database(SMALL_DB, overlays[1])  # dropped: the least recently used
    assert len(validations) == 6
