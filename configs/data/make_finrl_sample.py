"""Remake ``finrl_sample.csv.gz``: bokeh-sampledata's AAPL, GOOG, IBM, MSFT in FinRL's processed layout.

FinRL's ``YahooDownloader`` replaces ``close`` with Yahoo's adjusted close and keeps the raw
open/high/low; its ``FeatureEngineer`` then adds ``day`` (weekday) and indicator columns and the
file is written with a date index (``df.index = df.date.factorize()[0]``). This script does the
same from the embedded bokeh sample (Yahoo daily data, BSD licence), 2011-01-03 .. 2012-12-31.
The indicators are plain pandas versions of FinRL's (MACD 12/26, Wilder RSI over 30 days,
30-day SMA of the close): rltrade ignores them, they are there so the file has FinRL's shape.

    .venv/bin/python configs/data/make_finrl_sample.py      # writes configs/data/finrl_sample.csv.gz
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pandas as pd

SYMBOLS = ("AAPL", "GOOG", "IBM", "MSFT")
START, END = "2011-01-03", "2012-12-31"
OUT = Path(__file__).with_name("finrl_sample.csv.gz")


def _indicators(close: pd.Series) -> pd.DataFrame:
    macd = close.ewm(span=12, adjust=False).mean() - close.ewm(span=26, adjust=False).mean()
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / 30, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / 30, adjust=False).mean()
    rsi = 100 - 100 / (1 + gain / loss)
    sma = close.rolling(30, min_periods=1).mean()
    return pd.DataFrame({"macd": macd, "rsi_30": rsi.fillna(50.0), "close_30_sma": sma})


def build() -> pd.DataFrame:
    """The FinRL-layout frame (sorted by date then tic, index = date number)."""
    from bokeh_sampledata import stocks

    frames = []
    for tic in SYMBOLS:
        data = pd.DataFrame(getattr(stocks, tic))
        data = data[(data["date"] >= START) & (data["date"] <= END)].reset_index(drop=True)
        frame = pd.DataFrame(
            {
                "date": data["date"],
                "tic": tic,
                "open": data["open"],
                "high": data["high"],
                "low": data["low"],
                "close": data["adj_close"],  # FinRL: close = Yahoo's adjusted close
                "volume": data["volume"].astype("float64"),
                "day": pd.to_datetime(data["date"]).dt.day_of_week.astype("float64"),
            }
        )
        frames.append(pd.concat([frame, _indicators(frame["close"])], axis=1))
    out = pd.concat(frames, ignore_index=True).sort_values(["date", "tic"], kind="stable")
    out.index = out["date"].factorize()[0]
    return out


def main() -> None:
    text = io.StringIO()
    build().to_csv(text, float_format="%.6f")
    with OUT.open("wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, filename="") as gz:
        gz.write(text.getvalue().encode())
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
