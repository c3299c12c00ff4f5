"""Level-I tick data: readers (LOBSTER, trades-and-quotes CSV) -> validation -> the tick store.

>>> from rltrade.data.ticks import read_lobster, TickStore      # doctest: +SKIP
>>> events = read_lobster("GOOG_2012-06-21_34200000_57600000_message_1.csv.gz")  # doctest: +SKIP
>>> TickStore("./rltrade-data").ingest(events, source="lobster")  # doctest: +SKIP

Every reader returns :class:`~rltrade.data.ticks.schema.Events` (see its module for the
columns) that passed :func:`~rltrade.data.ticks.validate.validate_events`. The readers, the
store and the synthetic generator are imported on first use (the generator compiles numba code).
"""

from __future__ import annotations

from typing import Any

from rltrade.data.ticks.schema import (
    CANCEL,
    DELETE,
    EVENT_COLUMNS,
    EVENT_DTYPES,
    EVENT_KINDS,
    EXECUTE,
    HALT,
    HIDDEN,
    NO_ID,
    PRICE_SCALE,
    QUOTE,
    SUBMIT,
    Events,
)
from rltrade.data.ticks.validate import (
    EMPTY_ASK_PRICE,
    EMPTY_BID_PRICE,
    TickValidationError,
    validate_events,
)

_LAZY = {
    "read_lobster": "rltrade.data.ticks.lobster",
    "read_taq": "rltrade.data.ticks.taq",
    "TickStore": "rltrade.data.ticks.store",
    "synthetic_events": "rltrade.data.ticks.synthetic",
}

__all__ = [
    "CANCEL",
    "DELETE",
    "EMPTY_ASK_PRICE",
    "EMPTY_BID_PRICE",
    "EVENT_COLUMNS",
    "EVENT_DTYPES",
    "EVENT_KINDS",
    "EXECUTE",
    "HALT",
    "HIDDEN",
    "NO_ID",
    "PRICE_SCALE",
    "QUOTE",
    "SUBMIT",
    "Events",
    "TickStore",
    "TickValidationError",
    "read_lobster",
    "read_taq",
    "synthetic_events",
    "validate_events",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rltrade.data.ticks' has no attribute {name!r}")
