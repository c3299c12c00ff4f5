"""Bad input is refused through the real CLI: a clear error naming file, symbol and row, a non-zero
exit code, and a store left byte-for-byte unchanged."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.conftest import tree_digest
from typer.testing import CliRunner

from rltrade.cli import app

runner = CliRunner()


def ingest(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["data", "ingest", *args])
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


@pytest.fixture()
def seeded_store(tmp_path: Path, aapl_ibm_bars: pd.DataFrame) -> Path:
    """A store already holding real bars, so 'unchanged' means something."""
    good = tmp_path / "good.csv"
    aapl_ibm_bars[aapl_ibm_bars["timestamp"] < "2010-06-01"].to_csv(good, index=False)
    store = tmp_path / "store"
    code, out = ingest(f"csv:{good}", "--store", str(store))
    assert code == 0, out
    return store


def _row_of(frame: pd.DataFrame, symbol: str, date: str) -> int:
    """1-based data-row number of (symbol, date) in ``frame`` as written to CSV."""
    return int(np.flatnonzero((frame["symbol"] == symbol) & (frame["timestamp"] == date))[0]) + 1


def _set(col: str, value: float) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[(df["symbol"] == "IBM") & (df["timestamp"] == "2010-08-03"), col] = value
        return df

    return edit


def _high_below_low(df: pd.DataFrame) -> pd.DataFrame:
    at = (df["symbol"] == "IBM") & (df["timestamp"] == "2010-08-03")
    df.loc[at, ["high", "low"]] = df.loc[at, ["low", "high"]].to_numpy()
    return df


def _close_above_high(df: pd.DataFrame) -> pd.DataFrame:
    at = (df["symbol"] == "IBM") & (df["timestamp"] == "2010-08-03")
    df.loc[at, "close"] = df.loc[at, "high"] * 1.01
    return df


def _duplicate(df: pd.DataFrame) -> pd.DataFrame:
    at = int(np.flatnonzero((df["symbol"] == "IBM") & (df["timestamp"] == "2010-08-03"))[0])
    return pd.concat([df.iloc[: at + 1], df.iloc[[at]], df.iloc[at + 1 :]], ignore_index=True)


def _unsorted(df: pd.DataFrame) -> pd.DataFrame:
    at = int(np.flatnonzero((df["symbol"] == "IBM") & (df["timestamp"] == "2010-08-03"))[0])
    order = list(range(len(df)))
    order[at - 1], order[at] = order[at], order[at - 1]
    return df.iloc[order].reset_index(drop=True)


def _split_jump(df: pd.DataFrame) -> pd.DataFrame:
    later = (df["symbol"] == "IBM") & (df["timestamp"] >= "2010-08-03")
    df.loc[later, ["open", "high", "low", "close"]] /= 2.0  # an unadjusted 2:1 split
    return df


# (case, edit, expected message fragment, symbol and date named in the message)
CASES = [
    ("nan_price", _set("close", np.nan), "NaN in 'close'", "2010-08-03"),
    ("inf_price", _set("open", np.inf), "infinite 'open'", "2010-08-03"),
    ("negative_price", _set("low", -1.0), "non-positive 'low'", "2010-08-03"),
    ("zero_price", _set("close", 0.0), "non-positive 'close'", "2010-08-03"),
    ("high_below_low", _high_below_low, "high < low", "2010-08-03"),
    ("close_outside_range", _close_above_high, "close outside [low, high]", "2010-08-03"),
    ("negative_volume", _set("volume", -5.0), "negative 'volume'", "2010-08-03"),
    ("duplicate_timestamp", _duplicate, "duplicate timestamp", "2010-08-03"),
    ("unsorted_timestamps", _unsorted, "not in increasing order", "2010-08-02"),
    ("split_like_jump", _split_jump, "one-bar close move over 50% without an adjustment factor", "2010-08-03"),
]


@pytest.mark.parametrize(("case", "edit", "message", "date"), CASES, ids=[c[0] for c in CASES])
def test_bad_values_are_refused(
    case: str,
    edit: Callable[[pd.DataFrame], pd.DataFrame],
    message: str,
    date: str,
    tmp_path: Path,
    seeded_store: Path,
    aapl_ibm_bars: pd.DataFrame,
) -> None:
    bad = edit(aapl_ibm_bars.copy())
    path = tmp_path / f"{case}.csv"
    bad.to_csv(path, index=False)
    before = tree_digest(seeded_store)
    code, out = ingest(f"csv:{path}", "--store", str(seeded_store))
    assert code != 0
    assert str(path) in out and message in out, out
    row = _row_of(bad, "IBM", date) if case != "duplicate_timestamp" else _row_of(bad, "IBM", date) + 1
    assert f"IBM row {row} ({date})" in out, out
    assert tree_digest(seeded_store) == before


def test_split_like_jump_is_accepted_with_flag(tmp_path: Path, seeded_store: Path, aapl_ibm_bars: pd.DataFrame) -> None:
    path = tmp_path / "split.csv"
    _split_jump(aapl_ibm_bars.copy()).to_csv(path, index=False)
    code, out = ingest(f"csv:{path}", "--store", str(seeded_store), "--accept-jumps", "--replace")
    assert code == 0, out


def test_split_with_adjustment_factor_is_accepted(tmp_path: Path, aapl_ibm_bars: pd.DataFrame) -> None:
    frame = _split_jump(aapl_ibm_bars.copy())
    frame["adj_close"] = aapl_ibm_bars["close"]  # the adjustment is known
    path = tmp_path / "split_adj.csv"
    frame.to_csv(path, index=False)
    code, out = ingest(f"csv:{path}", "--store", str(tmp_path / "s"))
    assert code == 0, out


def test_unknown_symbol_is_refused(tmp_path: Path, seeded_store: Path, aapl_ibm_bars: pd.DataFrame) -> None:
    path = tmp_path / "good.csv"
    aapl_ibm_bars.to_csv(path, index=False)
    before = tree_digest(seeded_store)
    code, out = ingest(f"csv:{path}", "--symbols", "AAPL,TSLA", "--store", str(seeded_store))
    assert code != 0
    assert "TSLA" in out and str(path) in out and "AAPL, IBM" in out, out
    assert tree_digest(seeded_store) == before


@pytest.mark.parametrize(
    "content", ["", "symbol,timestamp,open,high,low,close,volume\n"], ids=["no_bytes", "header_only"]
)
def test_empty_file_is_refused(content: str, tmp_path: Path, seeded_store: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(content)
    before = tree_digest(seeded_store)
    code, out = ingest(f"csv:{path}", "--store", str(seeded_store))
    assert code != 0 and str(path) in out and ("empty" in out or "no rows" in out), out
    assert tree_digest(seeded_store) == before


@pytest.mark.parametrize(
    ("rename", "fragment"),
    [({"close": "clsoe"}, "missing column 'close' (found 'clsoe': misnamed?)"), ({"symbol": "ticker"}, "'symbol'")],
    ids=["misnamed", "missing"],
)
def test_missing_or_misnamed_columns(
    rename: dict[str, str], fragment: str, tmp_path: Path, seeded_store: Path, aapl_ibm_bars: pd.DataFrame
) -> None:
    path = tmp_path / "cols.csv"
    aapl_ibm_bars.rename(columns=rename).to_csv(path, index=False)
    before = tree_digest(seeded_store)
    code, out = ingest(f"csv:{path}", "--store", str(seeded_store))
    assert code != 0 and str(path) in out and fragment in out, out
    assert tree_digest(seeded_store) == before


def test_mixed_time_zones_are_refused(tmp_path: Path, seeded_store: Path, aapl_ibm_bars: pd.DataFrame) -> None:
    frame = aapl_ibm_bars.copy()
    stamps = frame["timestamp"] + " 16:00:00"
    frame["timestamp"] = stamps.where(frame.index < 100, stamps + "+00:00")  # naive, then zoned
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False)
    before = tree_digest(seeded_store)
    code, out = ingest(f"csv:{path}", "--store", str(seeded_store))
    assert code != 0 and str(path) in out and "mixed time zones" in out and "rows [101, 102, 103]" in out, out
    assert tree_digest(seeded_store) == before


def test_offsets_hours_apart_are_refused(tmp_path: Path, aapl_ibm_bars: pd.DataFrame) -> None:
    frame = aapl_ibm_bars.copy()
    stamps = frame["timestamp"] + "T16:00:00"
    frame["timestamp"] = (stamps + "-05:00").where(frame["symbol"] == "AAPL", stamps + "+08:00")
    path = tmp_path / "zones.csv.gz"
    with gzip.open(path, "wt") as fh:
        frame.to_csv(fh, index=False)
    code, out = ingest(f"csv:{path}", "--store", str(tmp_path / "s"))
    assert code != 0 and "mixed time zones" in out and "more than one hour apart" in out, out
    assert not (tmp_path / "s").exists()


def test_nothing_is_written_when_any_symbol_is_bad(tmp_path: Path, aapl_ibm_bars: pd.DataFrame) -> None:
    """AAPL is fine, IBM is not: the whole ingest is refused, AAPL included."""
    path = tmp_path / "half.csv"
    _set("close", -3.0)(aapl_ibm_bars.copy()).to_csv(path, index=False)
    code, out = ingest(f"csv:{path}", "--store", str(tmp_path / "s"))
    assert code != 0 and "IBM row" in out
    assert not (tmp_path / "s").exists() or tree_digest(tmp_path / "s") == {}
