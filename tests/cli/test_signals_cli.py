"""``rltrade signals`` (the job), ``signals export`` and ``signals crosscheck`` through the command line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from tests.signals.runs import TrainedRun, trained_run
from typer.testing import CliRunner

from rltrade.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return trained_run(tmp_path_factory)


@pytest.fixture(autouse=True)
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's signal cache in its tmp_path (the shared run's store stays untouched)."""
    path = tmp_path / "cli.db"
    monkeypatch.setenv("RLTRADE_DB", f"sqlite:///{path}")
    return path


def test_the_job_prints_the_next_sessions_weights(run: TrainedRun) -> None:
    result = runner.invoke(app, ["signals", str(run.run_dir), "--date", "2011-02-15"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"signals of {run.run_dir.name} as of 2011-02-15 (seed 7, last bar 2011-02-15)")
    weights = {line.split()[0]: float(line.split()[1].rstrip("%")) for line in lines[2:]}
    assert set(weights) == {"AAPL", "IBM", "MSFT", "cash"}
    assert sum(weights.values()) == pytest.approx(100.0, abs=1e-3)
    same = runner.invoke(app, ["signals", "compute", str(run.run_dir), "--date", "2011-02-15"])
    assert same.exit_code == 0 and same.output == result.output  # `compute` is the group's default


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["signals", "{tmp}/nowhere"], "error: run directory {tmp}/nowhere does not exist"),
        (["signals", "{tmp}"], "error: {tmp} is not a run directory: no manifest.json"),
        (["signals", "{run}", "--date", "2011-02-30"], "error: --date '2011-02-30' is not a date"),
        (["signals", "{run}", "--date", "2011-01-08"], "error: 2011-01-08 is not a trading day"),
        (["signals", "{run}", "--date", "2013-03-04"], "error: 2013-03-04 is after the last bar in the store"),
        (["signals", "{run}", "--date", "2010-06-01"], "error: 2010-06-01 is before the test range"),
        (["signals", "export", "{run}", "--format", "xls"], "error: --format 'xls': use csv or parquet"),
        (["signals", "crosscheck", "{run}", "--end", "2013-03-04"], "error: end 2013-03-04 is after the last bar"),
    ],
)
def test_errors_are_one_line(run: TrainedRun, tmp_path: Path, database: Path, args: list[str], message: str) -> None:
    argv = [a.format(tmp=tmp_path, run=run.run_dir) for a in args]
    result = runner.invoke(app, argv)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message.format(tmp=tmp_path)), result.output
    assert "Traceback" not in result.output


def test_export_then_crosscheck(run: TrainedRun, tmp_path: Path) -> None:
    out = tmp_path / "signals.parquet"
    argv = ["signals", "export", str(run.run_dir), "--start", "2011-01-01", "--end", "2011-03-31"]
    exported = runner.invoke(app, [*argv, "--format", "parquet", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert exported.output.strip() == f"signals: {out} (186 rows, 62 days 2011-01-03..2011-03-31)"
    assert len(pd.read_parquet(out)) == 186
    checked = runner.invoke(app, ["signals", "crosscheck", str(run.run_dir), "--signals", str(out)])
    assert checked.exit_code == 0, checked.output
    lines = checked.output.splitlines()
    assert lines[0].startswith(f"cross-check of {run.run_dir.name}: rltrade vs bt")
    assert lines[-1] == "agreement: within tolerance"
    assert any(line.startswith("daily returns, max |diff|") and line.endswith("1 bp") for line in lines)
