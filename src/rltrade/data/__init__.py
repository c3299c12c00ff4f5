"""Market data: sources -> validation -> Parquet store -> canonical bars."""

from rltrade.data.schema import CANONICAL_COLUMNS, RawBars
from rltrade.data.store import BarStore, load_bars

__all__ = ["CANONICAL_COLUMNS", "BarStore", "RawBars", "load_bars"]
