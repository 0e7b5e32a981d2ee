"""The CLI imports only what the command given needs.

``import app.cli`` and ``socketeer --help`` load none of the heavy libraries (numpy,
jsonschema, pyserial, Qt); a command loads its own module's imports only.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time

import pytest

from app.cli import build_parser
from app.commands import COMMANDS

HEAVY = ("numpy", "jsonschema", "serial", "PySide6", "pyqtgraph", "usb", "pyftdi")


def loaded_after(code: str) -> set[str]:
    """Top-level packages among HEAVY imported by a fresh interpreter running ``code``."""
    script = (
        "import sys, json\n"
        f"{code}\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_cli_loads_nothing_heavy() -> None:
    assert loaded_after("import app.cli") == set()


def test_help_and_version_load_nothing_heavy() -> None:
    code = (
        "from app.cli import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help']); main(['--version'])"
    )
    assert loaded_after(code) == set()


def test_image_commands_do_not_load_the_device_database_or_qt() -> None:
    assert loaded_after("from app.cli import build_parser; build_parser('image')") <= {"numpy"}


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_every_command_has_its_full_parser_when_given(command: str) -> None:
    parser = build_parser(command)
    sub = next(a for a in parser._actions if a.dest == "command")
    chosen = sub.choices[command]  # type: ignore[index]
    assert chosen.get_default("func") is not None or chosen.get_default("_help") is not None
    listed = {c.name for c in COMMANDS}
    assert set(sub.choices) == listed  # type: ignore[arg-type]


def test_a_search_on_a_cached_database_loads_nothing_heavy(tmp_path) -> None:
    """jsonschema (~60 ms of imports) runs when the database is validated, not when a
    cached, already validated one is read."""
    code = (
        "import os, contextlib, io\n"
        f"os.environ['SOCKETEER_CACHE_DIR'] = {str(tmp_path)!r}\n"
        "from app.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['devices', 'search', 'w25q128'])\n"
    )
    assert "jsonschema" in loaded_after(code)  # the first run validates and caches
    assert loaded_after(code) == set()


def test_the_window_reports_its_first_paint(tmp_path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SOCKETEER_CACHE_DIR": str(tmp_path)}
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "app", "gui", "--report-first-paint"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    painted = float(done.stdout.split("first-paint ")[1].split()[0])
    assert started < painted < time.time()


def test_a_binary_image_and_a_passing_compare_need_no_numpy(tmp_path) -> None:
    """numpy serves the text formats' readers, byte sums and a failing compare's bit
    counts; programming a binary image that verifies loads none of it (~100 ms)."""
    image = tmp_path / "fw.bin"
    image.write_bytes(bytes(range(256)) * 16)
    code = (
        "import os, contextlib, io\n"
        f"os.environ['SOCKETEER_CACHE_DIR'] = {str(tmp_path / 'cache')!r}\n"
        "from app.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['program', '--programmer', 'sim://?timing=instant',"
        f" '--device', 'winbond.w25q80dv', {str(image)!r}]) == 0\n"
    )
    loaded_after(code)  # builds the database cache
    assert loaded_after(code) == set()


def test_one_algorithm_is_imported_for_one_part() -> None:
    """A cycle looks its algorithm up by name: the other algorithms' modules (the SWD
    flash drivers, the SPI NOR planner ...) are not imported for a UART STM32 part."""
    script = (
        "import sys\n"
        "from app.algorithms import get_algorithm, has_algorithm\n"
        "assert get_algorithm('stm32_uart').name == 'stm32_uart'\n"
        "assert not has_algorithm('no_such_algorithm')\n"
        "print(sorted(m for m in sys.modules if m.startswith('app.algorithms.')))"
    )
    # has_algorithm of an unknown name imports them all (to be sure): check before it
    before = script.replace("assert not has_algorithm('no_such_algorithm')\n", "")
    done = subprocess.run(
        [sys.executable, "-c", before], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(ast.literal_eval(done.stdout.strip()))
    assert "app.algorithms.stm32_uart" in loaded
    assert not loaded & {"app.algorithms.cortex_m_swd", "app.algorithms.spi_nor"}
    everything = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert "app.algorithms.cortex_m_swd" in everything.stdout
