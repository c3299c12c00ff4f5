"""Bringing one's own files: select before checking, Yahoo's CSV download, shipped configs' data.

Every file is real data: bokeh-sampledata's Yahoo daily bars, written in each vendor's layout.
"""

from __future__ import annotations

import gzip
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from tests.conftest import tree_digest
from typer.testing import CliRunner

from rltrade.cli import app
from rltrade.data import BarStore, load_bars
from rltrade.data.sources import FILE_SOURCES, fetch, list_sources
from rltrade.errors import DataValidationError, SourceError, UnknownSymbolError

ROOT = Path(__file__).resolve().parents[2]
YAHOO_AAPL = ROOT / "tests" / "fixtures" / "yahoo_csv" / "AAPL_2005-02_2005-03.csv"
CONFIGS = ROOT / "configs"
runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


def _with_junk(bars: pd.DataFrame, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    """``bars`` (real AAPL, IBM) plus a junk ticker: IBM's first 5 rows renamed JUNK and spoiled by ``edit``."""
    junk = edit(bars[bars["symbol"] == "IBM"].head(5).assign(symbol="JUNK").reset_index(drop=True))
    return pd.concat([bars, junk], ignore_index=True)


def _compustat(bars: pd.DataFrame) -> pd.DataFrame:
    """Canonical bars in the Compustat daily columns (adjustment factor 1 everywhere)."""
    return pd.DataFrame(
        {
            "datadate": bars["timestamp"].str.replace("-", "").astype(int),
            "tic": bars["symbol"],
            "prccd": bars["close"],
            "ajexdi": 1.0,
            "prcod": bars["open"],
            "prchd": bars["high"],
            "prcld": bars["low"],
            "cshtrd": bars["volume"],
        }
    )


# ------------------------------------------------------------------ select, then check
def test_compustat_junk_ticker_with_nan_ajexdi(tmp_path: Path, aapl_ibm_bars: pd.DataFrame) -> None:
    """The issue's case: one ticker's missing ajexdi must not block the tickers asked for."""
    ibm_head = aapl_ibm_bars[aapl_ibm_bars["symbol"] == "IBM"].head(3)
    comp = _compustat(pd.concat([aapl_ibm_bars, ibm_head], ignore_index=True))
    comp.loc[comp.index[-3:], "tic"] = "JUNK"
    comp.loc[comp.index[-3:], "ajexdi"] = np.nan
    path = tmp_path / "compustat_daily.csv"
    comp.to_csv(path, index=False)
    junk_row = len(aapl_ibm_bars) + 1  # first JUNK data row
    assert re.search(r"^20100104,JUNK,[\d.]+,,", path.read_text(), re.M)  # an empty ajexdi cell

    store = tmp_path / "s"
    code, out = cli("data", "ingest", f"compustat:{path}", "--symbols", "AAPL,IBM", "--store", str(store))
    assert code == 0, out
    bars = load_bars(store=store)
    assert sorted(bars["symbol"].unique()) == ["AAPL", "IBM"] and len(bars) == len(aapl_ibm_bars)
    ibm = bars[bars["symbol"] == "IBM"]
    np.testing.assert_allclose(ibm["close"], aapl_ibm_bars.loc[aapl_ibm_bars["symbol"] == "IBM", "close"])

    before = tree_digest(store)
    code, out = cli("data", "ingest", f"compustat:{path}", "--store", str(store))
    assert code != 0, out
    assert str(path) in out and "ajexdi" in out and f"JUNK row {junk_row} (2010-01-04)" in out, out
    assert "3 rows in all" in out
    assert tree_digest(store) == before


def test_compustat_bad_factor_outside_the_dates_asked_for(tmp_path: Path, aapl_ibm_bars: pd.DataFrame) -> None:
    comp = _compustat(aapl_ibm_bars)
    comp.loc[comp["datadate"] < 20100201, "ajexdi"] = 0.0  # January is bad for both tickers
    path = tmp_path / "comp.csv.gz"
    comp.to_csv(path, index=False, compression="gzip")
    (raw,) = fetch(f"compustat:{path}", start="2010-02-01", end="2010-06-30")
    assert raw.frame["timestamp"].min() == pd.Timestamp("2010-02-01", tz="UTC")
    assert raw.frame["timestamp"].max() == pd.Timestamp("2010-06-30", tz="UTC")
    with pytest.raises(DataValidationError, match=r"comp.csv.gz: .*ajexdi .* AAPL row 1 \(2010-01-04\)"):
        fetch(f"compustat:{path}", end="2010-06-30")


def _write(kind: str, frame: pd.DataFrame, path: Path) -> None:
    if kind == "csv":
        frame.to_csv(path, index=False)
    elif kind == "parquet":
        frame.assign(timestamp=pd.to_datetime(frame["timestamp"]).dt.tz_localize("UTC")).to_parquet(path, index=False)
    elif kind == "finrl":
        frame.rename(columns={"timestamp": "date", "symbol": "tic"}).assign(macd=0.1).to_csv(path)
    else:
        _compustat(frame).to_csv(path, index=False)


def _spoil(kind: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A junk ticker's typical defect in each layout: text in a price column (Parquet: NaN prices)."""

    def edit(junk: pd.DataFrame) -> pd.DataFrame:
        if kind == "parquet":
            return junk.assign(close=np.nan)
        junk = junk.astype({"close": "object"})
        junk.loc[1:, "close"] = "ERR"
        if kind == "csv":
            junk = junk.astype({"timestamp": "object"})
            junk.loc[0, "timestamp"] = "not a date"
        return junk

    return edit


@pytest.mark.parametrize("kind", ["csv", "parquet", "finrl", "compustat"])
def test_every_file_source_keeps_symbols_before_checking(
    kind: str, tmp_path: Path, aapl_ibm_bars: pd.DataFrame
) -> None:
    frame = _with_junk(aapl_ibm_bars, _spoil(kind))
    path = tmp_path / f"bars_{kind}.{'parquet' if kind == 'parquet' else 'csv'}"
    _write(kind, frame, path)
    junk_row = len(aapl_ibm_bars) + 1

    store = tmp_path / "s"
    code, out = cli("data", "ingest", f"{kind}:{path}", "--symbols", "AAPL,IBM", "--store", str(store))
    assert code == 0, out
    assert sorted(load_bars(store=store)["symbol"].unique()) == ["AAPL", "IBM"]

    code, out = cli("data", "ingest", f"{kind}:{path}", "--store", str(tmp_path / "t"))
    assert code != 0 and str(path) in out, out
    expected = {
        "csv": f"unparsable timestamp 'not a date' at JUNK row {junk_row}",
        "parquet": f"NaN in 'close' at JUNK row {junk_row} (2010-01-04)",
        "finrl": f"non-numeric 'close' value 'ERR' at JUNK row {junk_row + 1} (2010-01-05)",
        "compustat": f"non-numeric 'prccd' value 'ERR' at JUNK row {junk_row + 1} (2010-01-05)",
    }[kind]
    assert expected in out, out
    assert not (tmp_path / "t").exists()

    with pytest.raises(UnknownSymbolError, match=r"has no symbol MSFT; it has AAPL, IBM, JUNK"):
        fetch(f"{kind}:{path}", symbols=["AAPL", "MSFT"])


def test_dates_outside_the_range_are_not_read(tmp_path: Path, aapl_ibm_bars: pd.DataFrame) -> None:
    frame = aapl_ibm_bars.astype({"close": "object"})
    frame.loc[frame["timestamp"] == "2010-12-31", "close"] = "#VALUE!"  # a spreadsheet's error cell
    path = tmp_path / "bars.csv"
    frame.to_csv(path, index=False)
    (raw,) = fetch(f"csv:{path}", symbols=["IBM"], end="2010-12-30")
    assert raw.symbols == ["IBM"] and raw.frame["timestamp"].max() == pd.Timestamp("2010-12-30", tz="UTC")
    # rows keep their number in the file, so later errors point at the right line
    ibm = aapl_ibm_bars.index[aapl_ibm_bars["symbol"] == "IBM"]
    assert raw.frame["_row"].iat[0] == ibm[0] + 1
    with pytest.raises(DataValidationError, match=r"non-numeric 'close' value '#VALUE!' at AAPL row \d+ \(2010-12-31"):
        fetch(f"csv:{path}")
    with pytest.raises(DataValidationError, match=r"no bars for IBM between 2011-01-01 and None"):
        fetch(f"csv:{path}", symbols=["IBM"], start="2011-01-01")
    # a symbol of the file with no bar in the range is not "unknown": the others are kept
    half = tmp_path / "half.csv"
    ibm_ends_in_june = (aapl_ibm_bars["symbol"] == "AAPL") | (aapl_ibm_bars["timestamp"] < "2010-07-01")
    aapl_ibm_bars[ibm_ends_in_june].to_csv(half, index=False)
    (raw,) = fetch(f"csv:{half}", symbols=["AAPL", "IBM"], start="2010-09-01")
    assert raw.symbols == ["AAPL"]


# ------------------------------------------------------------------ Yahoo's CSV download
def test_yahoo_csv_fixture_is_real_bokeh_data() -> None:
    from bokeh_sampledata import stocks

    fixture = pd.read_csv(YAHOO_AAPL)
    assert list(fixture.columns) == ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
    assert len(fixture) < 100
    aapl = pd.DataFrame(stocks.AAPL).set_index("date").loc[fixture["Date"]]
    np.testing.assert_allclose(fixture["Close"], aapl["close"])
    np.testing.assert_allclose(fixture["Adj Close"], aapl["adj_close"], rtol=1e-6)


def test_yahoo_csv_ingests_across_the_split(tmp_path: Path) -> None:
    store = tmp_path / "s"
    code, out = cli("data", "ingest", f"yahoo-csv:{YAHOO_AAPL}", "--symbols", "AAPL", "--store", str(store))
    assert code == 0, out
    assert "1 symbol(s) (1 new), 41 rows" in out
    bars = load_bars(store=store)
    fixture = pd.read_csv(YAHOO_AAPL)
    assert bars["symbol"].unique().tolist() == ["AAPL"]
    assert bars["timestamp"].iat[0] == pd.Timestamp("2005-02-01", tz="UTC")
    np.testing.assert_allclose(bars["adj_close"], fixture["Adj Close"])
    np.testing.assert_allclose(bars["volume"], fixture["Volume"])
    # the 2:1 split of 2005-02-28 halves the raw close; Adj Close carries it, so no --accept-jumps needed
    split = bars.set_index(bars["timestamp"].dt.strftime("%Y-%m-%d"))
    assert split.at["2005-02-28", "close"] / split.at["2005-02-25", "close"] == pytest.approx(44.86 / 88.99)
    assert split.at["2005-02-28", "adj_close"] / split.at["2005-02-25", "adj_close"] == pytest.approx(1.0, abs=0.02)
    assert bars.attrs["close_only"] == {"AAPL": False}

    (raw,) = fetch(f"yahoo-csv:{YAHOO_AAPL}", symbols=["AAPL"], start="2005-03-01", end="2005-03-04")
    assert raw.frame["timestamp"].dt.strftime("%m-%d").tolist() == ["03-01", "03-02", "03-03", "03-04"]


def test_yahoo_csv_null_rows_are_refused_with_row_and_date(tmp_path: Path) -> None:
    """Yahoo writes ``null`` in every column of a day it lacks: refused like any missing price."""
    lines = YAHOO_AAPL.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("2005-03-01,"))
    lines[at] = "2005-03-01,null,null,null,null,null,null"
    path = tmp_path / "AAPL_null.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    code, out = cli("data", "ingest", f"yahoo-csv:{path}", "--symbols", "AAPL", "--store", str(tmp_path / "s"))
    assert code != 0, out
    assert f"{path}: NaN in 'close' at AAPL row {at} (2005-03-01)" in out, out
    assert not (tmp_path / "s").exists()
    # the day asked away is never read
    (raw,) = fetch(f"yahoo-csv:{path}", symbols=["AAPL"], end="2005-02-28")
    assert len(raw.frame) == at - 1


def test_yahoo_csv_needs_exactly_one_symbol(tmp_path: Path) -> None:
    for symbols in (None, ["AAPL", "MSFT"]):
        with pytest.raises(SourceError, match=r"yahoo-csv:.* needs exactly one symbol, passed as --symbols NAME"):
            fetch(f"yahoo-csv:{YAHOO_AAPL}", symbols=symbols)
    code, out = cli("data", "ingest", f"yahoo-csv:{YAHOO_AAPL}", "--store", str(tmp_path / "s"))
    assert code != 0 and "not guessed from the file name" in out, out
    missing = tmp_path / "no_volume.csv"
    pd.read_csv(YAHOO_AAPL).drop(columns=["Volume"]).to_csv(missing, index=False)
    with pytest.raises(DataValidationError, match=r"missing column 'Volume'; the Yahoo CSV layout needs"):
        fetch(f"yahoo-csv:{missing}", symbols=["AAPL"])


def test_csv_source_points_a_yahoo_file_to_yahoo_csv(tmp_path: Path) -> None:
    code, out = cli("data", "ingest", f"csv:{YAHOO_AAPL}", "--store", str(tmp_path / "s"))
    assert code != 0, out
    assert "looks like a Yahoo CSV" in out and f"use yahoo-csv:{YAHOO_AAPL} --symbols NAME" in out, out
    no_adj = tmp_path / "AAPL.csv"
    pd.read_csv(YAHOO_AAPL).drop(columns=["Adj Close"]).to_csv(no_adj, index=False)
    with pytest.raises(DataValidationError, match="looks like a Yahoo CSV"):
        fetch(f"csv:{no_adj}")
    (raw,) = fetch(f"yahoo-csv:{no_adj}", symbols=["AAPL"])
    assert "adj_close" not in raw.frame.columns


def test_yahoo_csv_is_listed() -> None:
    assert "yahoo-csv:PATH" in {s.spec for s in list_sources()}
    code, out = cli("data", "sources")
    assert code == 0 and "yahoo-csv:PATH" in out and "--symbols NAME" in out, out


# ------------------------------------------------------------------ shipped configs run from a clone
def _file_sources(config: dict) -> list[str]:
    data = config.get("data") or {}
    specs = [data.get("source", "sample:sp500"), (data.get("index") or {}).get("source")]
    return [s for s in specs if s and s.partition(":")[0] in FILE_SOURCES]


@pytest.mark.parametrize("config_path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_read_files_of_the_repository(config_path: Path) -> None:
    """A config's file source is relative to the config's folder and inside the repository."""
    for spec in _file_sources(yaml.safe_load(config_path.read_text())):
        path = (config_path.parent / spec.partition(":")[2]).resolve()
        assert path.is_file(), f"{config_path.name}: {spec} -> {path} does not exist"
        assert path.is_relative_to(ROOT), f"{config_path.name}: {spec} is outside the repository"


def test_finrl_config_data_covers_its_dates(tmp_path: Path) -> None:
    config = yaml.safe_load((CONFIGS / "ensemble_finrl_csv.yaml").read_text())
    spec = config["data"]["source"]
    assert spec == "finrl:data/finrl_sample.csv.gz"
    (raw,) = fetch(f"finrl:{CONFIGS / spec.partition(':')[2]}")
    assert raw.close_only and raw.adjusted and raw.symbols == ["AAPL", "GOOG", "IBM", "MSFT"]
    first, last = raw.frame["timestamp"].min(), raw.frame["timestamp"].max()
    assert first <= pd.Timestamp(str(config["train"]["start"]), tz="UTC")
    assert pd.Timestamp(str(config["test"]["end"]), tz="UTC") <= last
    store = BarStore(tmp_path / "s")
    store.ingest([raw], source=spec)
    assert len(store.load()) == 4 * 502


def test_finrl_sample_is_remade_by_its_script() -> None:
    spec = importlib.util.spec_from_file_location("make_finrl_sample", CONFIGS / "data" / "make_finrl_sample.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shipped = pd.read_csv(CONFIGS / "data" / "finrl_sample.csv.gz", index_col=0)
    remade = module.build()
    assert list(shipped.columns[:7]) == ["date", "tic", "open", "high", "low", "close", "volume"]
    assert shipped["tic"].tolist() == remade["tic"].tolist() and shipped["date"].tolist() == remade["date"].tolist()
    np.testing.assert_allclose(shipped["close"], remade["close"], atol=1e-6)
    np.testing.assert_array_equal(shipped.index, remade.index)
    assert (CONFIGS / "data" / "finrl_sample.csv.gz").stat().st_size < 300_000
