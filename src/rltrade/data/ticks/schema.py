"""The canonical level-I event table every tick source returns and the replay engine reads.

One row per event, in time order, each carrying the best bid/ask *after* the event:

``ts``          int64, nanoseconds since the Unix epoch (UTC). LOBSTER times are seconds after
                midnight in exchange time (America/New_York); the reader converts them.
``kind``        int8, one of :data:`EVENT_KINDS`. LOBSTER's own codes 1-5 and 7 are kept; a quote
                update without an order (a trades-and-quotes CSV) is :data:`QUOTE`.
``order_id``    int64, the exchange's order reference; :data:`NO_ID` (-1) where the data carry none.
``size``        int64, shares of the event (submitted, cancelled, executed; a quote's new size).
``price``       int64, price x 10^4 (LOBSTER's unit): $91.14 is 911400.
``side``        int8, the side of the *resting limit order* the event concerns: +1 bid (buy limit
                order), -1 ask (sell limit order), 0 unknown. An execution of side -1 is a
                buyer-initiated trade at the ask (LOBSTER's convention). A TAQ trade's side is
                inferred from the book before it (at/above the ask: -1, at/below the bid: +1, else 0).
``ask_price``, ``ask_size``, ``bid_price``, ``bid_size``
                int64, the level-I book after the event (price x 10^4, shares).

Stored per symbol and session date (``ticks/symbol=S/date=YYYY-MM-DD/events.parquet``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUBMIT = 1
CANCEL = 2  # partial cancellation
DELETE = 3
EXECUTE = 4  # visible execution
HIDDEN = 5  # execution of a hidden order
HALT = 7
QUOTE = 10  # a best bid/ask update without order detail (trades-and-quotes data)

EVENT_KINDS: tuple[int, ...] = (SUBMIT, CANCEL, DELETE, EXECUTE, HIDDEN, HALT, QUOTE)
NO_ID = -1
PRICE_SCALE = 10_000

EVENT_COLUMNS: tuple[str, ...] = (
    "ts", "kind", "order_id", "size", "price", "side",
    "ask_price", "ask_size", "bid_price", "bid_size",
)  # fmt: skip
EVENT_DTYPES: dict[str, str] = {
    "ts": "int64",
    "kind": "int8",
    "order_id": "int64",
    "size": "int64",
    "price": "int64",
    "side": "int8",
    "ask_price": "int64",
    "ask_size": "int64",
    "bid_price": "int64",
    "bid_size": "int64",
}


@dataclass(frozen=True)
class Events:
    """One session's events as contiguous numpy arrays (the replay engine's input).

    ``symbol`` and ``date`` (``YYYY-MM-DD``, the exchange session) name the session;
    ``tz`` is the exchange time zone the trading window of a config is read in.
    """

    symbol: str
    date: str
    ts: np.ndarray
    kind: np.ndarray
    order_id: np.ndarray
    size: np.ndarray
    price: np.ndarray
    side: np.ndarray
    ask_price: np.ndarray
    ask_size: np.ndarray
    bid_price: np.ndarray
    bid_size: np.ndarray
    tz: str = "America/New_York"

    def __len__(self) -> int:
        return int(self.ts.shape[0])
