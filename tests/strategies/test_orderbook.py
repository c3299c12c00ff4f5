"""``strategy: orderbook`` end to end on a generated session: the run directory, its figures and errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.stats

import rltrade
from rltrade.config import ConfigError, OrderBookConfig, parse_config

CONFIG = {
    "name": "lob_small",
    "strategy": "orderbook",
    "data": {"source": "synthetic:3", "synthetic_hours": 4.0},
    "agent": {"kind": "qlearning", "episodes": 2},
    "fit": {"start": "10:00", "end": "10:30"},
    "train": {"start": "10:00", "end": "11:30"},
    "test": {"start": "11:30", "end": "13:00"},
    "evaluation": {"runs": 3},
}


@pytest.fixture(scope="module")
def lob_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    config = parse_config(CONFIG)
    assert isinstance(config, OrderBookConfig)
    return rltrade.run(config, tmp_path_factory.mktemp("runs"), progress=False)


def test_the_run_directory_holds_every_file(lob_run: Any) -> None:
    root = lob_run.run_dir
    for name in ("config.yaml", "manifest.json", "metrics.json", "pnl.csv", "positions.csv", "fills.csv", "policy.csv"):
        assert (root / name).is_file(), name
    assert sorted(p.name for p in (root / "models").iterdir()) == ["seed_0.npz", "seed_1.npz", "seed_2.npz"]
    html = (root / "report.html").read_text(encoding="utf-8")
    assert "Welch t-test" in html and "pnl-plot" in html and "Policy per state" in html
    assert "lob_small" in str(lob_run)


def test_metrics_match_the_pnl_paths_and_an_independent_welch_test(lob_run: Any) -> None:
    pnl = pd.read_csv(lob_run.run_dir / "pnl.csv", index_col="timestamp")
    finals = {
        g: pnl[[c for c in pnl.columns if c.startswith(f"{g}_seed")]].iloc[-1].to_numpy()
        for g in ("qlearning", "random")
    }
    agents = lob_run.metrics["agents"]
    for group, values in finals.items():
        assert agents[group]["runs"] == 3
        assert agents[group]["mean"] == pytest.approx(values.mean())
        assert agents[group]["std"] == pytest.approx(values.std(ddof=1))
    expected = scipy.stats.ttest_ind(finals["qlearning"], finals["random"], equal_var=False, alternative="greater")
    assert lob_run.metrics["welch"]["t"] == pytest.approx(expected.statistic)
    assert lob_run.metrics["welch"]["p"] == pytest.approx(expected.pvalue)
    # every run is flat at the end of the test window (flattened, the fee charged), buy-and-hold included
    positions = pd.read_csv(lob_run.run_dir / "positions.csv", index_col="timestamp")
    assert (positions.iloc[-1] == 0).all()
    # the test window only: the first decision is at 11:30 exchange time
    first = pd.Timestamp(pnl.index[0], tz="UTC").tz_convert("America/New_York")  # the CSVs hold UTC times
    assert (first.hour, first.minute) == (11, 30)


def test_the_seeds_repeat_bit_for_bit(lob_run: Any, tmp_path: Path) -> None:
    config = parse_config({**CONFIG, "evaluation": {"runs": 2}})
    again = rltrade.run(config, tmp_path, progress=False)
    first = pd.read_csv(lob_run.run_dir / "pnl.csv", index_col="timestamp")
    second = pd.read_csv(again.run_dir / "pnl.csv", index_col="timestamp")
    np.testing.assert_array_equal(second["qlearning_seed1"].to_numpy(), first["qlearning_seed1"].to_numpy())


def test_a_window_outside_the_session_is_refused(tmp_path: Path) -> None:
    config = parse_config({**CONFIG, "test": {"start": "15:00", "end": "16:00"}})  # the session ends at 13:30
    with pytest.raises(
        ConfigError,
        match=r"test: 15:00:00..16:00:00 reaches outside the data: the session SYN 2024-01-02 runs from 09:2",
    ):
        rltrade.run(config, tmp_path, progress=False)


def test_cli_prints_the_table_and_names_an_unset_data_folder(tmp_path: Path) -> None:
    path = tmp_path / "lob.yaml"
    path.write_text(
        "name: lob\nstrategy: orderbook\ndata:\n"
        "  source: 'lobster:${RLTRADE_TEST_UNSET_DIR}/X_2012-06-21_1_2_message_1.csv'\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "rltrade.cli", "run", str(path), "--runs-dir", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "RLTRADE_TEST_UNSET_DIR is not set" in done.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
