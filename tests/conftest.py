"""Fixtures shared by every test folder: the embedded real samples, a store path, report run folders."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones included) mapped to the SHA-256 of its bytes."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            out[os.path.relpath(os.path.join(dirpath, name), root) + "/"] = "dir"
        for name in filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="session")
def aapl_ibm_bars() -> pd.DataFrame:
    """Real daily OHLCV (bokeh-sampledata AAPL and IBM, 2010) in canonical CSV columns."""
    from bokeh_sampledata import stocks

    frames = []
    for symbol in ("AAPL", "IBM"):
        data = pd.DataFrame(getattr(stocks, symbol))
        data = data[(data["date"] >= "2010-01-01") & (data["date"] < "2011-01-01")]
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "timestamp": data["date"].to_numpy(),
                    "open": data["open"].to_numpy(),
                    "high": data["high"].to_numpy(),
                    "low": data["low"].to_numpy(),
                    "close": data["close"].to_numpy(),
                    "volume": data["volume"].to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def sample_bars(spec: str) -> pd.DataFrame:
    """Canonical bars of an embedded sample (``sample:sp500`` or ``sample:stocks``), validated, no network."""
    from rltrade.data.sources import fetch
    from rltrade.data.validate import validate_bars

    frame = pd.concat([validate_bars(raw) for raw in fetch(spec)], ignore_index=True)
    return frame.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="session")
def sp500_bars() -> pd.DataFrame:
    """The embedded S&P 500 sample (20 stocks, adjusted close only, 1990-2022), sorted by (timestamp, symbol)."""
    return sample_bars("sample:sp500")


@pytest.fixture(scope="session")
def stocks_bars() -> pd.DataFrame:
    """The embedded bokeh sample (AAPL, GOOG, IBM, MSFT OHLCV; GOOG starts in 2004)."""
    return sample_bars("sample:stocks")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bar-store path shared by one test module's runs (not created)."""
    return tmp_path_factory.mktemp("store") / "bars"


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One test module's synthetic ensemble run folder with trades (:func:`tests.report.builder.build_run_dir`)."""
    from tests.report.builder import build_run_dir

    return build_run_dir(tmp_path_factory.mktemp("full"), ensemble=True, trades=True)


@pytest.fixture(scope="module")
def full_html(full_run: Path) -> str:
    """The report written for :func:`full_run`."""
    from rltrade.report import write_report

    return write_report(full_run).read_text(encoding="utf-8")


@pytest.fixture()
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"
