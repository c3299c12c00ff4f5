"""The ``rltrade`` command line, through the installed entry point and in-process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from rltrade.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]

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
        "yahoo-csv:PATH",
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


# ------------------------------------------------------------------ --help shows every default
def _options(*path: str) -> list[Any]:
    import click

    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return [p for p in command.params if isinstance(p, click.Option) and p.name != "help"]


@pytest.mark.parametrize("command", [["data", "ingest"], ["data", "show"], ["run"], ["train"]], ids=" ".join)
def test_every_option_says_its_default(command: list[str]) -> None:
    for option in _options(*command):
        if option.is_flag:
            continue  # a flag is off unless given
        assert option.required or option.default is not None or isinstance(option.show_default, str), option.name


def test_help_keeps_the_default_texts() -> None:
    result = runner.invoke(app, ["data", "ingest", "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "[default: ($RLTRADE_STORE or ./rltrade-data)]" in text
    assert "[default: (the source's)]" in text and "[default: UTC]" in text
    run = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert "[default: (a local Ray)]" in " ".join(run.output.split())


# ------------------------------------------------------------------ data show --freq
def test_show_refuses_an_unknown_freq_and_names_what_the_store_holds(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    assert runner.invoke(app, ["data", "ingest", "sample:stocks", "--store", store]).exit_code == 0
    bad = runner.invoke(app, ["data", "show", "--freq", "5m", "--store", store])
    assert bad.exit_code == 1 and "unknown frequency '5m'; use one of 1d, 1h, 1min" in bad.output
    empty = runner.invoke(app, ["data", "show", "--freq", "1h", "--store", store])
    assert empty.exit_code == 0 and f"no 1h bars in store {store} (it holds 1d)" in empty.output
    daily = runner.invoke(app, ["data", "show", "--freq", "1d", "--store", store], env={"COLUMNS": "80"})
    assert daily.exit_code == 0 and "4 partition(s), 4 symbol(s)" in daily.output
    assert max(len(line) for line in daily.output.splitlines()) <= 80


# ------------------------------------------------------------------ results tables fit the terminal
METRICS = {
    name: {
        "cumulative_return": 1.533 - i,
        "annual_return": 0.168,
        "annual_volatility": 0.208,
        "sharpe": 0.85,
        "sortino": -1.21,
        "calmar": None,
        "max_drawdown": -0.303,
        "turnover": 145.97,
        "hit_rate": 0.52,
        "final_value": 2_533_206.68 * (i + 1),
    }
    for i, name in enumerate(["PPO", "PPO_seed1", "buy_and_hold", "equal_weight_seed2", "min_variance_seed2", "index"])
}


def _run_dir(tmp_path: Path, **files: object) -> Path:
    """A run directory as `rltrade run` lays it out (read through rltrade.runs.Run)."""
    run_dir = tmp_path / "quickstart-20261201-214239"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("name: quickstart\n")
    stamps = ["2017-01-03", "2017-01-04", "2017-01-05"]
    rows = ["timestamp," + ",".join(METRICS)] + [f"{d}," + ",".join(["1000000"] * len(METRICS)) for d in stamps]
    (run_dir / "equity.csv").write_text("\n".join(rows) + "\n")
    for name, data in {"metrics": METRICS, "manifest": {}, **files}.items():
        (run_dir / f"{name}.json").write_text(json.dumps(data))
    return run_dir


def _printed(run_dir: Path, columns: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    from rltrade.cli import _print_results

    monkeypatch.setenv("COLUMNS", str(columns))
    _print_results(run_dir)
    return str(capsys.readouterr().out)


SUMMARY = {
    "n_seeds": 3,
    "confidence": 0.95,
    "strategies": [
        {
            "name": name,
            "mean": {"cumulative_return": 1.2, "annual_return": 0.15, "sharpe": 0.8, "max_drawdown": -0.3},
            "std": {"cumulative_return": 0.1, "annual_return": 0.01, "sharpe": 0.05, "max_drawdown": 0.02},
            "sharpe_ci": [None, None] if name == "random" else [0.12, 1.45],
            "psr": 0.91,
        }
        for name in ("PPO", "min_variance_seed2", "random")
    ],
    "welch": {"t": 2.5, "p": 0.0123},
}


@pytest.mark.parametrize("columns", [80, 100])
def test_results_fit_the_terminal(
    tmp_path: Path, columns: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = {"annualization": {"periods_per_year": 252, "basis": "daily bars: 252 a year"}}
    out = _printed(_run_dir(tmp_path, summary=SUMMARY, manifest=manifest), columns, capsys, monkeypatch)
    assert max(len(line) for line in out.splitlines()) <= columns, out
    for text in ("cum ret", "Sharpe", "max DD", "final", "min_variance_seed2", "[nan, nan]", "Welch t-test"):
        assert text in out, out
    assert "sqrt(252) of per-bar returns (daily bars: 252 a year)" in " ".join(out.split())


def test_wide_terminal_shows_every_metric(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _printed(_run_dir(tmp_path), 200, capsys, monkeypatch)
    header = next(line for line in out.splitlines() if "cum ret" in line)
    for name in ("ann ret", "vol", "Sharpe", "Sortino", "Calmar", "max DD", "turnover", "final"):
        assert name in header
    assert "2,533,206.68" in out and "not shown" not in out
    assert "sqrt(252) of per-bar returns (daily bars: 252 a year)" in " ".join(out.split())  # an old run: daily


def test_rebacktest_folder_reads_its_own_annualization(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    run_dir = _run_dir(tmp_path)
    folder = run_dir / "backtests" / "2018-01-01_2018-02-07"
    folder.mkdir(parents=True)
    for name in ("equity.csv", "metrics.json"):
        shutil.copy(run_dir / name, folder / name)
    backtest = {"run": "../..", "annualization": {"periods_per_year": 6240, "basis": "1h bars, 24x5 market"}}
    (folder / "backtest.json").write_text(json.dumps(backtest))
    out = _printed(folder, 120, capsys, monkeypatch)
    assert "sqrt(6240) of per-bar returns (1h bars, 24x5 market)" in " ".join(out.split())


def test_stage_lines_go_through_tqdm_write(monkeypatch: pytest.MonkeyPatch) -> None:
    from tqdm import tqdm

    from rltrade.cli import _stage

    written: list[tuple[str, Any]] = []
    monkeypatch.setattr(tqdm, "write", classmethod(lambda cls, s, file=None, **_: written.append((s, file))))
    _stage("training PPO")
    assert written == [("> training PPO", sys.stderr)]


@pytest.mark.slow
def test_local_ray_starts_without_the_token_banner() -> None:
    """The ensemble's local Ray keeps token authentication but not its "Token authentication is enabled" banner."""
    pytest.importorskip("ray")
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    code = (
        "import pandas as pd\n"
        "from rltrade.strategies.ensemble import _Trainer\n"
        "trainer = _Trainer(True, None, pd.DataFrame({'close': [1.0]}))\n"
        "trainer.close()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "Token authentication" not in result.stderr + result.stdout
    assert "RAY_AUTH_MODE" not in result.stderr + result.stdout


# ------------------------------------------------------------------ --set overrides
def test_set_overrides_any_dotted_field(tmp_path: Path) -> None:
    from rltrade.cli import _load, parse_sets
    from rltrade.config import ConfigError

    config = ROOT / "configs" / "quickstart.yaml"
    cfg = _load(config, None, ["data.symbols=[AAPL,MSFT]", "agent.timesteps=5000", "env.cost.bps=2.5"])
    assert cfg.data.symbols == ["AAPL", "MSFT"] and cfg.agent.timesteps == 5000 and cfg.env.cost.bps == 2.5
    assert _load(config, None, None).agent.timesteps == 100_000  # the file itself is unchanged
    with pytest.raises(ConfigError, match=r"agent.timestep"):
        _load(config, None, ["agent.timestep=5"])  # validated like the file: the field is named
    with pytest.raises(ConfigError, match="expected FIELD=VALUE"):
        parse_sets(["agent.timesteps"])
    bad = runner.invoke(app, ["run", str(config), "--set", "agent.algorithm=PPX"])
    assert bad.exit_code == 1 and "agent.algorithm: unknown algorithm 'PPX'" in bad.output


def test_a_path_given_with_set_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rltrade.cli import _load

    monkeypatch.chdir(tmp_path)
    cfg = _load(ROOT / "configs" / "quickstart.yaml", None, ["data.source=csv:mine.csv", "data.store=store"])
    assert cfg.data.source == f"csv:{tmp_path / 'mine.csv'}" and cfg.data.store == str(tmp_path / "store")
