"""File sources: FinRL's processed CSV (and its adjusted-close trap), Compustat, Parquet, gzip."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rltrade.data import BarStore, load_bars
from rltrade.data.sources import fetch, list_sources
from rltrade.errors import DataValidationError, SourceError


def _finrl_frame(bars: pd.DataFrame, *, adjusted_close: bool) -> pd.DataFrame:
    """A FinRL processed file (index column, indicators) built from real bars.

    With ``adjusted_close`` it reproduces FinRL's pattern: ``close`` holds the dividend-adjusted
    close (here ~12% below the raw one) while open/high/low stay unadjusted.
    """
    out = pd.DataFrame(
        {
            "date": bars["timestamp"],
            "tic": bars["symbol"],
            "open": bars["open"],
            "high": bars["high"],
            "low": bars["low"],
            "close": bars["close"] * (0.88 if adjusted_close else 1.0),
            "volume": bars["volume"],
            "day": 0,
            "macd": 0.1,
            "rsi_30": 55.0,
            "turbulence": 0.0,
        }
    ).sort_values(["date", "tic"])
    out.index = pd.Index(np.zeros(len(out), dtype=int))
    return out


def test_finrl_adjusted_close_pattern_becomes_close_only(
    tmp_path: Path, aapl_ibm_bars: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "finrl_processed.csv"
    frame = _finrl_frame(aapl_ibm_bars, adjusted_close=True)
    frame.to_csv(path)
    with caplog.at_level(logging.WARNING):
        batches = fetch(f"finrl:{path}")
    (raw,) = batches
    assert raw.close_only and raw.adjusted
    assert "close lies outside [low, high]" in caplog.text and "adjusted close" in caplog.text
    store = BarStore(tmp_path / "s")
    store.ingest(batches, source=f"finrl:{path}")
    bars = store.load()
    assert bars[["open", "high", "low"]].isna().all().all()  # no mixed price scales
    np.testing.assert_allclose(bars["close"].to_numpy(), frame["close"].to_numpy())
    assert bars.attrs["close_only"] == {"AAPL": True, "IBM": True}
    assert "macd" not in bars.columns  # FinRL's back-filled indicators are not imported


def test_finrl_consistent_file_keeps_ohlc(tmp_path: Path, aapl_ibm_bars: pd.DataFrame) -> None:
    path = tmp_path / "finrl_ok.csv.gz"
    with gzip.open(path, "wt") as fh:
        _finrl_frame(aapl_ibm_bars, adjusted_close=False).to_csv(fh)
    (raw,) = fetch(f"finrl:{path}")
    assert not raw.close_only
    store = BarStore(tmp_path / "s")
    store.ingest([raw], source="finrl")
    bars = store.load(["IBM"])
    np.testing.assert_allclose(bars["high"], aapl_ibm_bars.loc[aapl_ibm_bars["symbol"] == "IBM", "high"])


def test_finrl_missing_column(tmp_path: Path, aapl_ibm_bars: pd.DataFrame) -> None:
    path = tmp_path / "finrl_bad.csv"
    _finrl_frame(aapl_ibm_bars, adjusted_close=False).drop(columns=["tic"]).to_csv(path)
    with pytest.raises(DataValidationError, match=r"finrl_bad.csv: missing column 'tic'"):
        fetch(f"finrl:{path}")


def test_compustat_prices_divided_by_adjustment_factor(tmp_path: Path, aapl_ibm_bars: pd.DataFrame) -> None:
    ibm = aapl_ibm_bars[aapl_ibm_bars["symbol"] == "IBM"].reset_index(drop=True)
    factor = np.where(ibm["timestamp"] < "2010-06-01", 2.0, 1.0)  # a 2:1 split on 2010-06-01
    comp = pd.DataFrame(
        {
            "gvkey": 14542,
            "datadate": ibm["timestamp"].str.replace("-", "").astype(int),
            "tic": "IBM",
            "conm": "INTL BUSINESS MACHINES CORP",
            "prccd": ibm["close"] * factor,
            "ajexdi": factor,
            "prcod": ibm["open"] * factor,
            "prchd": ibm["high"] * factor,
            "prcld": ibm["low"] * factor,
            "cshtrd": ibm["volume"] / factor,
        }
    )
    path = tmp_path / "compustat.csv.gz"
    comp.to_csv(path, index=False, compression="gzip")
    store = BarStore(tmp_path / "s")
    store.ingest(fetch(f"compustat:{path}"), source="compustat")
    bars = store.load()
    np.testing.assert_allclose(bars["close"], ibm["close"])
    np.testing.assert_allclose(bars["low"], ibm["low"])
    np.testing.assert_allclose(bars["volume"], ibm["volume"])
    assert bars["timestamp"].iat[0] == pd.Timestamp("2010-01-04", tz="UTC")


def test_compustat_close_only_layout(tmp_path: Path) -> None:
    path = tmp_path / "close_only.csv"
    path.write_text("datadate,tic,prccd,ajexdi\n20200102,SPY,324.87,1\n20200103,SPY,322.41,1\n")
    (raw,) = fetch(f"compustat:{path}")
    assert raw.close_only
    bad = tmp_path / "bad_factor.csv"
    bad.write_text("datadate,tic,prccd,ajexdi\n20200102,SPY,324.87,1\n20200103,SPY,322.41,0\n")
    with pytest.raises(DataValidationError, match=r"bad_factor.csv: adjustment factor ajexdi .* SPY row 2"):
        fetch(f"compustat:{bad}")


def test_parquet_and_csv_sources_agree(tmp_path: Path, aapl_ibm_bars: pd.DataFrame) -> None:
    csv, parquet = tmp_path / "bars.csv.gz", tmp_path / "bars.parquet"
    aapl_ibm_bars.to_csv(csv, index=False)
    typed = aapl_ibm_bars.assign(timestamp=pd.to_datetime(aapl_ibm_bars["timestamp"]).dt.tz_localize("UTC"))
    typed.to_parquet(parquet, index=False)
    a, b = BarStore(tmp_path / "a"), BarStore(tmp_path / "b")
    a.ingest(fetch(f"csv:{csv}"), source="csv")
    b.ingest(fetch(f"parquet:{parquet}"), source="parquet")
    pd.testing.assert_frame_equal(a.load(), b.load())


def test_close_only_csv_and_intraday_frequency(tmp_path: Path) -> None:
    path = tmp_path / "hourly.csv"
    stamps = pd.date_range("2021-03-01 14:30", periods=6, freq="h", tz="America/New_York")
    pd.DataFrame(
        {"symbol": "SPY", "timestamp": [s.isoformat() for s in stamps], "close": [1.0, 1.1, 1.05, 1.2, 1.1, 1.15]}
    ).to_csv(path, index=False)
    (raw,) = fetch(f"csv:{path}")
    assert raw.close_only and raw.freq == "1h"
    store = BarStore(tmp_path / "s")
    store.ingest([raw], source="csv")
    bars = load_bars(freq="1h", store=tmp_path / "s")
    assert bars["timestamp"].iat[0] == pd.Timestamp("2021-03-01 19:30", tz="UTC")
    with pytest.raises(SourceError, match=r"--freq 1d was asked but the bars are 1h apart"):
        fetch(f"csv:{path}", freq="1d")


def test_embedded_samples(tmp_path: Path) -> None:
    specs = {s.spec for s in list_sources()}
    assert {"sample:sp500", "sample:stocks", "sample:indices", "sample:eurusd"} <= specs
    stocks = fetch("sample:stocks", symbols=["GOOG"])
    assert stocks[0].frame["timestamp"].min() == pd.Timestamp("2004-08-19", tz="UTC")
    indices = fetch("sample:indices")
    assert sorted(s for b in indices for s in b.symbols) == ["^GSPC", "^IXIC"]
    eurusd = fetch("sample:eurusd")
    assert eurusd[0].freq == "1h" and len(eurusd[0].frame) == 5000
    with pytest.raises(SourceError, match="sample:eurusd provides 1h bars only"):
        fetch("sample:eurusd", freq="1d")
    with pytest.raises(SourceError, match="unknown source 'nope'"):
        fetch("nope")
