"""The ``rltrade`` command line, through the installed entry point and in-process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rltrade.cli import app

runner = CliRunner()

COMMANDS = [
    [],
    ["data"],
    ["data", "sources"],
    ["data", "ingest"],
    ["data", "show"],
    ["run"],
    ["train"],
    ["backtest"],
    ["report"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) or "rltrade" for c in COMMANDS])
def test_help_on_every_command(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_sources_one_line_each() -> None:
    result = runner.invoke(app, ["data", "sources"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    specs = [line.split()[0] for line in lines]
    assert specs == [
        "sample:sp500",
        "sample:sp500_index",
        "sample:stocks",
        "sample:indices",
        "sample:eurusd",
        "csv:PATH",
        "parquet:PATH",
        "finrl:PATH",
        "compustat:PATH",
        "yahoo",
        "alpaca",
    ]


def _rltrade() -> str:
    exe = Path(sys.executable).parent / "rltrade"
    return str(exe) if exe.exists() else shutil.which("rltrade") or "rltrade"


def test_ingest_sp500_then_show_with_the_installed_command(tmp_path: Path) -> None:
    env = {**os.environ, "RLTRADE_STORE": str(tmp_path / "store"), "COLUMNS": "200"}
    ingest = subprocess.run([_rltrade(), "data", "ingest", "sample:sp500"], env=env, capture_output=True, text=True)
    assert ingest.returncode == 0, ingest.stderr
    assert "20 symbol(s) (20 new)" in ingest.stdout
    show = subprocess.run([_rltrade(), "data", "show"], env=env, capture_output=True, text=True)
    assert show.returncode == 0, show.stderr
    rows = [line for line in show.stdout.splitlines() if " 1d " in line]
    assert len(rows) == 20
    assert all("1990-01-02" in r and "2022-12-28" in r and "8,313" in r for r in rows)
    assert "20 partition(s), 20 symbol(s)" in show.stdout
    again = subprocess.run([_rltrade(), "data", "ingest", "sample:sp500"], env=env, capture_output=True, text=True)
    assert "20 unchanged" in again.stdout


def test_errors_exit_non_zero_with_a_message(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "ingest", "csv:" + str(tmp_path / "nope.csv"), "--store", str(tmp_path)])
    assert result.exit_code == 1
    assert "nope.csv: file not found" in result.output
    result = runner.invoke(app, ["data", "ingest", "sample:sp500", "--freq", "5min", "--store", str(tmp_path)])
    assert result.exit_code == 1 and "unknown frequency '5min'" in result.output


def test_show_empty_store(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "show", "--store", str(tmp_path / "empty")])
    assert result.exit_code == 0 and "is empty" in result.output
