"""The tick store: one Parquet file per symbol and session, beside the bar store's partitions.

Layout (``root`` is a local path or any fsspec URI, resolved like the bar store's, so one
store directory can hold bars and ticks)::

    root/ticks/symbol=GOOG/date=2012-06-21/events.parquet

Each file holds one session's :class:`~rltrade.data.ticks.schema.Events` in the schema's
column order and dtypes, with the symbol, date, exchange time zone, event count, first and last
event time and the source in the Parquet key-value metadata (key ``rltrade``). Events are
validated before anything is written; the file is written to a hidden temporary name beside its
destination and renamed into place, so re-ingesting a session replaces it atomically and a
refused or failed ingest leaves the store as it was.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rltrade.data.store import BarStore, StoreWriteError
from rltrade.data.ticks.schema import EVENT_COLUMNS, EVENT_DTYPES, Events
from rltrade.data.ticks.validate import TickValidationError, validate_events
from rltrade.errors import StoreError, UnknownSymbolError

TICKS_DIR = "ticks"
FILE_NAME = "events.parquet"
META_KEY = b"rltrade"
FORMAT_VERSION = 1
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class TickStore:
    """Level-I event sessions in Parquet, rooted at a local path or an fsspec URI.

    Parameters
    ----------
    root:
        Local directory or fsspec URI; ``None`` means ``$RLTRADE_STORE`` or ``./rltrade-data``
        (:func:`rltrade.data.store.resolve_store`), refused like the bar store's when it is a file.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        # The bar store resolves the root, its filesystem and the same refusals (a file, an
        # unknown protocol); the tick store shares them so the two never disagree on a location.
        self._bars = BarStore(root)
        self.uri, self.fs, self.root = self._bars.uri, self._bars.fs, self._bars.root
        self.is_local, self.protocol = self._bars.is_local, self._bars.protocol

    def __repr__(self) -> str:
        return f"TickStore({self.uri!r})"

    # ----------------------------------------------------------------------------- layout
    def _base(self) -> str:
        return f"{self.root.rstrip('/')}/{TICKS_DIR}"

    def _dir(self, symbol: str, date: str) -> str:
        return f"{self._base()}/symbol={quote(symbol, safe='')}/date={date}"

    def path(self, symbol: str, date: str) -> str:
        """Where the session ``symbol`` on ``date`` is (or would be) stored."""
        return f"{self._dir(symbol, date)}/{FILE_NAME}"

    def sessions(self, symbol: str | None = None) -> list[tuple[str, str]]:
        """Stored ``(symbol, date)`` pairs, sorted; only those of ``symbol`` when given."""
        self._bars.check_root()
        found = []
        for entry in self.fs.glob(f"{self._base()}/symbol=*/date=*/{FILE_NAME}"):
            parts = str(entry).rstrip("/").split("/")
            sym, day = parts[-3], parts[-2]
            if sym.startswith("symbol=") and day.startswith("date="):
                found.append((unquote(sym[len("symbol=") :]), day[len("date=") :]))
        return sorted(s for s in found if symbol is None or s[0] == symbol)

    # ----------------------------------------------------------------------------- writing
    def ingest(self, events: Events, *, source: str = "") -> str:
        """Validate ``events`` and write them as their session's file, replacing a stored one.

        Parameters
        ----------
        events:
            One session (any reader's output, or :func:`~rltrade.data.ticks.synthetic.synthetic_events`).
        source:
            Where the events came from (``lobster:PATH``), recorded in the metadata.

        Returns
        -------
        str
            The file written (a path, or a path inside the fsspec filesystem).

        Raises
        ------
        TickValidationError
            The events are malformed (nothing is written).
        StoreWriteError
            Writing failed; the store was left as it was.
        """
        _check_session(events)
        validate_events(events)
        self._bars.check_root()
        table = pa.table({col: np.ascontiguousarray(getattr(events, col)) for col in EVENT_COLUMNS})
        meta = {
            "format": FORMAT_VERSION,
            "symbol": events.symbol,
            "date": events.date,
            "tz": events.tz,
            "events": len(events),
            "first": _iso(events.ts[0]),
            "last": _iso(events.ts[-1]),
            "source": source,
        }
        table = table.replace_schema_metadata({META_KEY: json.dumps(meta, sort_keys=True).encode()})
        buffer = pa.BufferOutputStream()  # encoded in memory: Arrow never holds a Python file
        pq.write_table(table, buffer, compression="zstd")
        final = self.path(events.symbol, events.date)
        self._write_atomic(self._dir(events.symbol, events.date), final, buffer.getvalue().to_pybytes())
        return final

    def _write_atomic(self, directory: str, final: str, payload: bytes) -> None:
        """Write ``payload`` beside ``final`` and rename it into place; on failure remove what was made."""
        root = self.root.rstrip("/")
        made = [
            level
            for level in [*(str(p) for p in reversed(PurePosixPath(directory).parents)), directory]
            if (level == root or level.startswith(root + "/")) and not self.fs.exists(level)
        ]
        tmp = f"{directory}/.{FILE_NAME}.tmp-{uuid.uuid4().hex}"
        try:
            self.fs.makedirs(directory, exist_ok=True)
            with self.fs.open(tmp, "wb") as fh:
                fh.write(payload)
            if self.is_local:
                os.replace(tmp, final)  # atomic on POSIX
            else:
                self.fs.mv(tmp, final)
        except BaseException as exc:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)
            for level in reversed(made):  # deepest first: leave nothing this ingest created
                if self.fs.exists(level) and not self.fs.ls(level):
                    self.fs.rmdir(level)
            if isinstance(exc, OSError):
                raise StoreWriteError(f"cannot write to store {self.uri}: {exc.strerror or exc}") from exc
            raise

    # ----------------------------------------------------------------------------- reading
    def load(self, symbol: str, date: str) -> Events:
        """The stored session ``symbol`` on ``date`` (``YYYY-MM-DD``).

        Raises
        ------
        UnknownSymbolError
            The store holds no session of ``symbol``.
        StoreError
            No session on ``date`` (the message lists the stored ones), or the file is not a tick
            session of this store.
        """
        path = self.path(symbol, date)
        self._bars.check_root()
        if not self.fs.exists(path):
            held = [d for s, d in self.sessions(symbol)]
            if not held:
                symbols = sorted({s for s, _ in self.sessions()})
                raise UnknownSymbolError(
                    f"no tick sessions of {symbol} in store {self.uri}; "
                    + (f"it has ticks of {', '.join(symbols)}" if symbols else "it has no ticks")
                )
            shown = ", ".join(held[:10]) + (f" and {len(held) - 10} more" if len(held) > 10 else "")
            raise StoreError(f"no tick session of {symbol} on {date} in store {self.uri}; it has {shown}")
        table = self._bars.read_table(path, "a tick session")
        raw = (table.schema.metadata or {}).get(META_KEY)
        missing = [c for c in EVENT_COLUMNS if c not in table.column_names]
        if raw is None or missing:
            raise StoreError(f"{path}: not an rltrade tick session (missing {missing or 'its metadata'})")
        meta: dict[str, Any] = json.loads(raw)
        columns = {c: table.column(c).to_numpy().astype(EVENT_DTYPES[c], copy=False) for c in EVENT_COLUMNS}
        return Events(symbol=str(meta["symbol"]), date=str(meta["date"]), tz=str(meta["tz"]), **columns)


def _check_session(events: Events) -> None:
    """Refuse a session name the layout cannot hold (before validation reads any array)."""
    where = f"events of {events.symbol!r} {events.date!r}"
    if not isinstance(events.symbol, str) or not events.symbol.strip():
        raise TickValidationError(where, None, "the symbol is empty")
    if not isinstance(events.date, str) or not _is_date(events.date):
        raise TickValidationError(where, None, "the session date is not a date written YYYY-MM-DD")
    try:
        ZoneInfo(events.tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise TickValidationError(where, None, f"tz {events.tz!r} is not an IANA time zone") from None


def _is_date(text: str) -> bool:
    if not _DATE.fullmatch(text):
        return False
    try:
        np.datetime64(text, "D")
    except ValueError:
        return False
    return True


def _iso(ns: np.int64) -> str:
    return pd.Timestamp(int(ns), unit="ns", tz="UTC").isoformat()
