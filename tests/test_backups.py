"""The service technician's safety net (issue 16 item 7): verified reads and automatic
backups of in-system parts, on the simulator with a flaky-contact fault."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from app.cli import main
from app.core.image import MemoryImage
from app.engine.backups import list_backups
from app.engine.cycle import CycleOptions, build_cycle_spec, part_names
from app.engine.site_runner import CycleSpec, read_differences
from app.engine.station import Station
from app.hal.programmer import open_programmer

DEVICE = "winbond.w25q80dv"  # 1 MiB: two full reads stay quick
IN_SYSTEM = "sim://?connection=in-system"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def image(seed: int, size: int = 8192) -> MemoryImage:
    return MemoryImage.from_bytes(random.Random(seed).randbytes(size), 0)


def station(url: str, database) -> Station:
    device = database.get(DEVICE)
    programmer = open_programmer(url, device=device, database=database)
    return Station(programmer, lambda _e: None, part_names(database))


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("SOCKETEER_DATA_DIR", str(folder))
    return folder


def test_writing_an_in_system_part_keeps_what_it_held_first(database, data_dir: Path) -> None:
    device = database.get(DEVICE)
    st = station(IN_SYSTEM, database)
    first, second = image(1), image(2)
    assert st.run(build_cycle_spec("program", device, database, image=first)).passed
    result = st.run(build_cycle_spec("program", device, database, image=second)).results[0]
    assert result.passed, result.message
    backups, problems = list_backups()
    assert problems == [] and len(backups) == 2
    latest = backups[0]  # newest first: taken before the second image went in
    assert latest.name in result.message
    held = latest.data()
    assert held[:8192] == first.read(0, 8192) and held[8192:] == b"\xff" * (len(held) - 8192)
    record = json.loads(latest.path.with_suffix(".json").read_text())
    assert record["sha256"] == hashlib.sha256(latest.path.read_bytes()).hexdigest()
    assert record["device_id"] == DEVICE and record["size_bytes"] == 1 << 20
    assert record["unique_id"] == result.unique_id and result.unique_id in latest.name.upper()


def test_a_socket_site_and_a_job_that_says_so_take_no_backup(database, data_dir: Path) -> None:
    device = database.get(DEVICE)
    assert (
        station("sim://", database)
        .run(build_cycle_spec("program", device, database, image=image(1)))
        .passed
    )
    options = CycleOptions.from_operations({"backup": False}, "auto")
    spec = build_cycle_spec("program", device, database, image=image(1), options=options)
    assert station(IN_SYSTEM, database).run(spec).passed
    assert list_backups() == ([], [])


def test_a_flaky_clip_stops_the_cycle_before_anything_is_written(database, data_dir: Path) -> None:
    device = database.get(DEVICE)
    st = station(IN_SYSTEM + "&fault=1:flaky", database)
    result = st.run(build_cycle_spec("program", device, database, image=image(3))).results[0]
    assert not result.passed and result.failed_step == "backup"
    assert "two reads disagree at" in result.message and "reseat the clip" in result.message
    chip = st.programmer.sites[0].chip
    assert chip is not None and bytes(chip.memory[:8192]) == b"\xff" * 8192  # untouched
    assert list_backups() == ([], [])


def test_reads_on_in_system_sites_are_verified_by_default(capsys, tmp_path: Path) -> None:
    out_file = tmp_path / "part.bin"
    flaky = IN_SYSTEM + "&fault=1:flaky"
    code, out, _ = run(capsys, "read", "--device", DEVICE, "--programmer", flaky, str(out_file))
    assert code == 1 and "two reads disagree" in out and not out_file.exists()
    code, out, _ = run(capsys, "read", "--device", DEVICE, "--programmer", IN_SYSTEM, str(out_file))
    assert code == 0 and "(two reads agree)" in out and out_file.stat().st_size == 1 << 20
    code, out, _ = run(
        capsys, "read", "--device", DEVICE, "--programmer", flaky, "--single-read", str(out_file)
    )
    assert code == 0 and "two reads" not in out  # asked for one read: one read
    code, out, _ = run(
        capsys, "read", "--device", DEVICE, "--programmer", "sim://?fault=1:flaky",
        "--verified", str(out_file),
    )  # fmt: skip
    assert code == 1 and "two reads disagree" in out  # a socket site, when asked


def test_read_differences_counts_and_names_the_first_addresses() -> None:
    first = bytes(100_000)
    second = bytearray(first)
    for at in (5, 4096, 4097, 99_999):
        second[at] ^= 0x10
    assert read_differences(first, bytes(second), 0x1000, show=3) == (
        4,
        [0x1005, 0x1000 + 4096, 0x1000 + 4097],
    )


def test_a_backup_is_restored_with_one_command_onto_the_same_part(
    capsys, tmp_path: Path, data_dir: Path
) -> None:
    firmware = tmp_path / "fw.bin"
    firmware.write_bytes(random.Random(5).randbytes(4096))
    code, out, _ = run(capsys, "program", "--device", DEVICE, "--programmer", IN_SYSTEM,
                       str(firmware))  # fmt: skip
    assert code == 0 and "; backup " in out
    code, out, _ = run(capsys, "backups", "list", "--json")
    listed = json.loads(out)["backups"]
    assert len(listed) == 1 and listed[0]["device_id"] == DEVICE
    name = listed[0]["name"]
    # the same board (seed 1 gives the part the same unique ID) takes it back
    code, out, err = run(capsys, "backups", "restore", name[:20], "--programmer", IN_SYSTEM)
    assert code == 0, err
    assert "restore" in out and "PASS" in out
    # another part (another unique ID) only when asked
    other = IN_SYSTEM + "&seed=9"
    code, _, err = run(capsys, "backups", "restore", name, "--programmer", other)
    assert code == 2 and "unique ID" in err and "--other-part" in err
    code, out, _ = run(capsys, "backups", "restore", name, "--programmer", other, "--other-part")
    assert code == 0


def test_an_altered_backup_is_not_restored(capsys, tmp_path: Path, data_dir: Path) -> None:
    firmware = tmp_path / "fw.bin"
    firmware.write_bytes(bytes(512))
    assert run(capsys, "program", "--device", DEVICE, "--programmer", IN_SYSTEM,
               str(firmware))[0] == 0  # fmt: skip
    (backup,), _ = list_backups()
    data = bytearray(backup.path.read_bytes())
    data[100] ^= 1
    backup.path.write_bytes(bytes(data))
    code, _, err = run(capsys, "backups", "restore", backup.name, "--programmer", IN_SYSTEM)
    assert code == 2 and "does not match its record" in err


def test_a_backup_that_cannot_be_saved_writes_nothing(
    database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    monkeypatch.setenv("SOCKETEER_DATA_DIR", str(blocker))
    device = database.get(DEVICE)
    st = station(IN_SYSTEM, database)
    result = st.run(CycleSpec("program", device, image(4))).results[0]
    assert not result.passed and "backup could not be saved" in result.message
    chip = st.programmer.sites[0].chip
    assert chip is not None and bytes(chip.memory[:4096]) == b"\xff" * 4096
