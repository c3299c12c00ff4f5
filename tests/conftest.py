"""Shared test helpers: real embedded data written to real files."""

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


@pytest.fixture()
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"
