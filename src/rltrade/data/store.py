"""The embedded bar store: Parquet files partitioned by frequency and symbol, read through DuckDB.

Layout (``root`` is a local path or any fsspec URI such as ``s3://bucket/bars`` or ``memory://x``)::

    root/freq=1d/symbol=AAPL/bars.parquet

Each file holds one symbol at one frequency in canonical form, sorted by timestamp, and carries
its metadata (source, close-only flag, content hash) in the Parquet key-value metadata, so data
and description are replaced together by a single atomic rename. Writes go to a temporary file
first; a crash never leaves a half-written partition. Re-ingesting the same rows leaves files
byte-for-byte unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, unquote

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rltrade.data.schema import CANONICAL_COLUMNS, FREQUENCIES, OPTIONAL_COLUMNS, RawBars
from rltrade.data.validate import validate_bars
from rltrade.errors import DataValidationError, StoreError, UnknownSymbolError

log = logging.getLogger(__name__)

DEFAULT_STORE = "./rltrade-data"
STORE_ENV = "RLTRADE_STORE"
FILE_NAME = "bars.parquet"
META_KEY = b"rltrade"
FORMAT_VERSION = 1


class StoreWriteError(StoreError, OSError):
    """Writing partitions failed (disk full, permission denied); the store was left as it was."""


def resolve_store(store: str | os.PathLike[str] | None) -> str:
    """The store location: the argument, else ``$RLTRADE_STORE``, else ``./rltrade-data``."""
    if store is not None:
        return os.fspath(store)
    return os.environ.get(STORE_ENV) or DEFAULT_STORE


def content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of a canonical frame's content (column names, symbols, timestamps, values).

    Independent of Parquet encoding and library versions: two frames hash equal exactly when
    they hold the same rows in the same order (NaNs compare equal).
    """
    h = hashlib.sha256()
    for col in frame.columns:
        h.update(col.encode() + b"\0")
        series = frame[col]
        if col == "symbol":  # distinct symbols in order of appearance, then one code per row
            codes, uniques = pd.factorize(series)
            h.update("\0".join(map(str, uniques)).encode() + b"\0")
            h.update(np.ascontiguousarray(codes, dtype="<i8").tobytes())
        elif col == "timestamp":
            h.update(np.ascontiguousarray(series.dt.tz_convert("UTC").astype("int64").to_numpy()).tobytes())
        else:
            values = series.to_numpy(dtype="float64", na_value=np.nan).copy()
            values[np.isnan(values)] = np.nan  # one NaN bit pattern
            h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class PartitionInfo:
    """What ``rltrade data show`` prints for one (frequency, symbol) partition."""

    freq: str
    symbol: str
    first: pd.Timestamp
    last: pd.Timestamp
    rows: int
    close_only: bool
    adjusted: bool
    source: str
    content_hash: str


@dataclass(frozen=True)
class IngestResult:
    """Outcome of writing one partition: ``status`` is ``new``, ``updated`` or ``unchanged``."""

    freq: str
    symbol: str
    status: str
    rows_before: int
    rows_after: int
    content_hash: str


class BarStore:
    """A Parquet + DuckDB bar store rooted at a local path or an fsspec URI.

    Parameters
    ----------
    root:
        Local directory or fsspec URI; ``None`` means ``$RLTRADE_STORE`` or ``./rltrade-data``.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.uri = resolve_store(root)
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.uri)
        except ValueError as exc:
            if "protocol not known" not in str(exc).lower():
                raise StoreError(f"store {self.uri}: {exc}") from None
            protocol = self.uri.split("://", 1)[0]
            raise StoreError(
                f"store {self.uri}: unknown protocol '{protocol}://'; use a local directory or an fsspec URI "
                "such as s3://bucket/bars, gs://bucket/bars or memory://bars"
            ) from None
        except ImportError as exc:  # a known protocol whose package is missing ("Install s3fs to access S3")
            raise StoreError(f"store {self.uri}: {exc}") from None
        self.protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.is_local = self.protocol in ("file", "local")
        self._root_checked = False
        if self.is_local:
            self.check_root()

    def check_root(self) -> None:
        """Refuse a root that is a file, or lies under one (checked once, before the first read or write)."""
        if self._root_checked:
            return
        try:
            if self.is_local:
                for path in (self.root, *(str(p) for p in PurePosixPath(self.root).parents)):
                    if os.path.exists(path):
                        if not os.path.isdir(path):
                            where = "is a file, not a directory" if path == self.root else f"lies under the file {path}"
                            raise StoreError(
                                f"store {self.uri} {where}; pass a directory (new, or holding an rltrade store) "
                                "with --store or $RLTRADE_STORE"
                            )
                        break
            elif self.fs.isfile(self.root):
                raise StoreError(f"store {self.uri} is a file, not a directory; pass a directory URI")
        except OSError as exc:
            raise StoreError(f"store {self.uri} cannot be read: {exc}") from None
        self._root_checked = True

    def __repr__(self) -> str:
        return f"BarStore({self.uri!r})"

    # ----------------------------------------------------------------------------- layout
    def _partition_dir(self, freq: str, symbol: str) -> str:
        return f"{self.root.rstrip('/')}/freq={freq}/symbol={quote(symbol, safe='')}"

    def _path(self, freq: str, symbol: str) -> str:
        return f"{self._partition_dir(freq, symbol)}/{FILE_NAME}"

    def _duckdb_path(self, path: str) -> str:
        return path if self.is_local else f"{self.protocol}://{path}"

    def frequencies(self) -> list[str]:
        """Frequencies that have at least one partition, in the order of ``FREQUENCIES``."""
        return [f for f in FREQUENCIES if self.symbols(f)]

    def symbols(self, freq: str = "1d") -> list[str]:
        """Symbols stored at ``freq``, sorted."""
        self.check_root()
        base = f"{self.root.rstrip('/')}/freq={freq}"
        if not self.fs.exists(base):
            return []
        found = []
        for entry in self.fs.ls(base, detail=False):
            name = str(entry).rstrip("/").rsplit("/", 1)[-1]
            if name.startswith("symbol=") and self.fs.exists(f"{entry}/{FILE_NAME}"):
                found.append(unquote(name[len("symbol=") :]))
        return sorted(found)

    # ----------------------------------------------------------------------------- metadata
    def _read_schema(self, path: str) -> pa.Schema:
        """The Arrow schema (with the key-value metadata) of a partition file, read from its footer."""
        try:
            if self.is_local:  # Arrow opens the file itself: no Python file object (see read_table)
                return pq.read_schema(path)
            with self.fs.open(path, "rb") as fh:  # read synchronously on this thread
                return pq.read_schema(fh)
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"{path}: cannot be read as a Parquet partition: {exc}") from None

    def read_table(self, path: str, what: str = "a Parquet partition") -> pa.Table:
        """A whole Parquet file of the store (``what`` it should be names it in the error).

        Arrow is never handed a Python file object here. ``pq.read_table`` decodes on Arrow's CPU
        pool, and the pool thread that finishes the read drops the last reference to the reader,
        sometimes just after ``read_table`` has returned. Dropping a reader built on a Python file
        (an fsspec file) needs the GIL; when the main thread has meanwhile raised an error and
        started shutting the interpreter down, CPython ends that thread with ``pthread_exit``,
        which unwinds through Arrow's ``noexcept`` worker loop and aborts the process
        ("terminate called without an active exception", exit 134, seen under load after a
        refused ingest). A native Arrow file (local) or an in-memory buffer (other filesystems)
        needs no GIL to close.
        """
        try:
            if self.is_local:
                with pa.OSFile(path, "rb") as source:
                    return pq.read_table(source)
            return pq.read_table(pa.BufferReader(self.fs.cat_file(path)))
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"{path}: cannot be read as {what}: {exc}") from None

    def _read_meta(self, path: str) -> dict[str, Any]:
        schema = self._read_schema(path)
        raw = (schema.metadata or {}).get(META_KEY)
        if raw is None:
            raise StoreError(f"{path}: not an rltrade partition (no '{META_KEY.decode()}' metadata)")
        meta: dict[str, Any] = json.loads(raw)
        return meta

    def info(self, freq: str | None = None) -> list[PartitionInfo]:
        """Metadata of every partition (or those of one frequency), read without loading bars."""
        if freq is not None and freq not in FREQUENCIES:
            raise StoreError(f"unknown frequency {freq!r}; use one of {', '.join(FREQUENCIES)}")
        out = []
        for f in [freq] if freq else FREQUENCIES:
            for sym in self.symbols(f):
                meta = self._read_meta(self._path(f, sym))
                out.append(
                    PartitionInfo(
                        freq=f,
                        symbol=sym,
                        first=pd.Timestamp(meta["first"]),
                        last=pd.Timestamp(meta["last"]),
                        rows=int(meta["rows"]),
                        close_only=bool(meta["close_only"]),
                        adjusted=bool(meta["adjusted"]),
                        source=str(meta["source"]),
                        content_hash=str(meta["content_hash"]),
                    )
                )
        return out

    def _read_partition(self, freq: str, symbol: str) -> tuple[pd.DataFrame, dict[str, Any]] | None:
        path = self._path(freq, symbol)
        if not self.fs.exists(path):
            return None
        table = self.read_table(path)
        raw = (table.schema.metadata or {}).get(META_KEY)
        if raw is None:
            raise StoreError(f"{path}: not an rltrade partition (no '{META_KEY.decode()}' metadata)")
        meta = json.loads(raw)
        frame = table.to_pandas()
        frame["timestamp"] = frame["timestamp"].astype("datetime64[ns, UTC]")
        return frame, meta

    # ----------------------------------------------------------------------------- writing
    def ingest(
        self,
        batches: Iterable[RawBars],
        *,
        source: str,
        replace: bool = False,
        accept_jumps: bool = False,
    ) -> list[IngestResult]:
        """Validate every batch, then write one partition per (freq, symbol) atomically.

        Parameters
        ----------
        batches:
            Bars from a source; several symbols per batch are allowed.
        source:
            Source specification recorded in the metadata (``sample:sp500``, ``csv:/path``).
        replace:
            Replace stored partitions instead of merging with them.
        accept_jumps:
            See :func:`rltrade.data.validate.validate_bars`.

        Nothing is written unless every batch and every merged partition is valid.
        """
        planned: list[tuple[str, str, pd.DataFrame, dict[str, Any], IngestResult]] = []
        for raw in batches:
            frame = validate_bars(raw, accept_jumps=accept_jumps)
            for symbol, part in frame.groupby("symbol", sort=True):
                part = part.reset_index(drop=True)
                planned.append(self._plan(raw, str(symbol), part, source, replace, accept_jumps))
        self._commit([(freq, sym, frame, meta) for freq, sym, frame, meta, res in planned if res.status != "unchanged"])
        return [p[4] for p in planned]

    def _plan(
        self, raw: RawBars, symbol: str, new: pd.DataFrame, source: str, replace: bool, accept_jumps: bool
    ) -> tuple[str, str, pd.DataFrame, dict[str, Any], IngestResult]:
        stored = None if replace else self._read_partition(raw.freq, symbol)
        rows_before = 0
        merged = new
        if stored is not None:
            old, meta = stored
            rows_before = len(old)
            where = f"{raw.origin}: {symbol} ({raw.freq})"
            hint = (
                "re-ingest with --replace to overwrite the stored bars, "
                "or keep both by ingesting into another store (--store DIR)"
            )
            if bool(meta["close_only"]) != raw.close_only or bool(meta["adjusted"]) != raw.adjusted:
                raise DataValidationError(
                    f"{where}: stored bars from {meta['source']} are close_only={meta['close_only']}, "
                    f"adjusted={meta['adjusted']} but the new ones are close_only={raw.close_only}, "
                    f"adjusted={raw.adjusted}; {hint}"
                )
            if set(old.columns) != set(new.columns):
                raise DataValidationError(
                    f"{where}: stored columns {sorted(old.columns)} differ from "
                    f"new columns {sorted(new.columns)}; {hint}"
                )
            _check_overlap(old, new[old.columns], where, hint)
            fresh = new.loc[~new["timestamp"].isin(old["timestamp"]), old.columns]
            merged = old if fresh.empty else pd.concat([old, fresh], ignore_index=True)
            merged = merged.sort_values("timestamp", kind="stable").reset_index(drop=True)
            if not fresh.empty:  # the seam between stored and new rows must be valid too
                validate_bars(
                    RawBars(merged, f"{where} merged with the store", raw.freq, raw.close_only, raw.adjusted),
                    accept_jumps=accept_jumps,
                )
        digest = content_hash(merged)
        if stored is not None and digest == stored[1]["content_hash"]:
            status = "unchanged"
        else:
            status = "updated" if self.fs.exists(self._path(raw.freq, symbol)) else "new"
        meta = {
            "format": FORMAT_VERSION,
            "symbol": symbol,
            "freq": raw.freq,
            "source": source,
            "close_only": raw.close_only,
            "adjusted": raw.adjusted,
            "rows": len(merged),
            "first": pd.DatetimeIndex(merged["timestamp"])[0].isoformat(),
            "last": pd.DatetimeIndex(merged["timestamp"])[-1].isoformat(),
            "content_hash": digest,
        }
        result = IngestResult(raw.freq, symbol, status, rows_before, len(merged), digest)
        return raw.freq, symbol, merged, meta, result

    def _commit(self, writes: Sequence[tuple[str, str, pd.DataFrame, dict[str, Any]]]) -> None:
        """Write every partition to a temporary file, then rename each into place."""
        if not writes:
            return
        self.check_root()
        temps: list[tuple[str, str]] = []
        made_dirs: list[str] = []
        try:
            for freq, symbol, frame, meta in writes:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                table = table.replace_schema_metadata({META_KEY: json.dumps(meta, sort_keys=True).encode()})
                buffer = pa.BufferOutputStream()  # encoded in memory: Arrow never holds a Python file
                # microseconds: the Parquet timestamp every reader (DuckDB, Spark, polars) maps to UTC
                pq.write_table(table, buffer, compression="zstd", coerce_timestamps="us")
                directory = self._partition_dir(freq, symbol)
                root = self.root.rstrip("/")
                for level in [*(str(p) for p in reversed(PurePosixPath(directory).parents)), directory]:
                    if (level == root or level.startswith(root + "/")) and not self.fs.exists(level):
                        made_dirs.append(level)  # the root, freq=... and symbol=... folders this ingest creates
                self.fs.makedirs(directory, exist_ok=True)
                tmp = f"{directory}/.{FILE_NAME}.tmp-{uuid.uuid4().hex}"
                temps.append((tmp, self._path(freq, symbol)))
                with self.fs.open(tmp, "wb") as fh:
                    fh.write(buffer.getvalue().to_pybytes())
        except BaseException as exc:
            for tmp, _ in temps:
                if self.fs.exists(tmp):
                    self.fs.rm(tmp)
            for directory in reversed(made_dirs):  # deepest first: leave nothing this ingest created
                if self.fs.exists(directory) and not self.fs.ls(directory):
                    self.fs.rmdir(directory)
            if isinstance(exc, OSError):
                raise StoreWriteError(f"cannot write to store {self.uri}: {exc.strerror or exc}") from exc
            raise
        for tmp, final in temps:
            if self.is_local:
                os.replace(tmp, final)  # atomic on POSIX
            else:
                self.fs.mv(tmp, final)

    # ----------------------------------------------------------------------------- reading
    def load(
        self,
        symbols: Sequence[str] | str | None = None,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
        freq: str = "1d",
    ) -> pd.DataFrame:
        """Canonical bars sorted by (timestamp, symbol); see :func:`load_bars`."""
        if freq not in FREQUENCIES:
            raise StoreError(f"unknown frequency {freq!r}; use one of {', '.join(FREQUENCIES)}")
        available = self.symbols(freq)
        if not available:
            raise StoreError(
                f"store {self.uri} has no {freq} bars; ingest some first, e.g. `rltrade data ingest sample:sp500`"
            )
        if isinstance(symbols, str):
            symbols = [s for s in symbols.split(",") if s]
        wanted = list(dict.fromkeys(symbols)) if symbols else available
        unknown = [s for s in wanted if s not in available]
        if unknown:
            raise UnknownSymbolError(
                f"unknown symbol(s) {', '.join(unknown)} in store {self.uri} ({freq}); "
                f"available: {', '.join(available)}"
            )
        paths = [self._path(freq, s) for s in wanted]
        metas = {s: self._read_meta(p) for s, p in zip(wanted, paths, strict=True)}
        has_adj = self._has_adj_close(paths)
        columns = ", ".join(list(CANONICAL_COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in has_adj])
        clauses, params = [], []
        lo, hi = _bounds(start, end)
        if lo is not None:
            clauses.append("timestamp::TIMESTAMPTZ >= ?::TIMESTAMPTZ")
            params.append(lo.isoformat())
        if hi is not None:
            clauses.append("timestamp::TIMESTAMPTZ < ?::TIMESTAMPTZ")
            params.append(hi.isoformat())
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        files = ", ".join("'" + self._duckdb_path(p).replace("'", "''") + "'" for p in paths)
        sql = (
            f"SELECT {columns} FROM read_parquet([{files}], union_by_name=true, hive_partitioning=false) "
            f"{where} ORDER BY timestamp, symbol"
        )
        import duckdb  # imported here: keeps `import rltrade` light

        con = duckdb.connect()
        try:
            con.execute("SET TimeZone='UTC'")
            if not self.is_local:
                con.register_filesystem(self.fs)
            frame = con.sql(sql, params=params).to_arrow_table().to_pandas()
        finally:
            con.close()
        stamps = pd.to_datetime(frame["timestamp"])
        frame["timestamp"] = (stamps.dt.tz_localize("UTC") if stamps.dt.tz is None else stamps).astype(
            "datetime64[ns, UTC]"
        )
        if not pd.api.types.is_string_dtype(frame["symbol"]):
            frame["symbol"] = frame["symbol"].astype(str)
        frame.attrs["close_only"] = {s: bool(m["close_only"]) for s, m in metas.items()}
        frame.attrs["adjusted"] = {s: bool(m["adjusted"]) for s, m in metas.items()}
        frame.attrs["freq"] = freq
        frame.attrs["content_hash"] = content_hash(frame)
        return frame

    def _has_adj_close(self, paths: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for path in paths:
            found.update(c for c in OPTIONAL_COLUMNS if c in self._read_schema(path).names)
        return found


def _check_overlap(old: pd.DataFrame, new: pd.DataFrame, where: str, hint: str) -> None:
    """Refuse new rows that restate stored rows with different values (e.g. re-adjusted prices)."""
    both = old.merge(new, on=["symbol", "timestamp"], suffixes=("_old", "_new"))
    if both.empty:
        return
    for col in old.columns.drop(["symbol", "timestamp"]):
        a, b = both[f"{col}_old"].to_numpy(dtype="float64"), both[f"{col}_new"].to_numpy(dtype="float64")
        differ = ~((a == b) | (np.isnan(a) & np.isnan(b)))
        if differ.any():
            i = int(np.flatnonzero(differ)[0])
            raise DataValidationError(
                f"{where}: {int(differ.sum())} rows restate stored bars with a different '{col}' "
                f"(first at {pd.DatetimeIndex(both['timestamp'])[i].isoformat()}: stored {a[i]}, new {b[i]}); {hint}"
            )


def _bounds(
    start: str | pd.Timestamp | None, end: str | pd.Timestamp | None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Inclusive start; inclusive end, where a date-only end includes that whole day."""

    def as_utc(value: str | pd.Timestamp) -> pd.Timestamp:
        ts = pd.Timestamp(value)
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")

    lo = as_utc(start) if start is not None else None
    hi = None
    if end is not None:
        hi = as_utc(end)
        is_date = isinstance(end, str) and len(end.strip()) <= 10
        hi = hi + pd.Timedelta(days=1) if is_date or hi == hi.normalize() else hi + pd.Timedelta(microseconds=1)
    if lo is not None and hi is not None and hi <= lo:
        raise StoreError(f"empty date range: start {start} is after end {end}")
    return lo, hi


def load_bars(
    symbols: Sequence[str] | str | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    freq: str = "1d",
    store: str | os.PathLike[str] | None = None,
    calendar: str | None = None,
) -> pd.DataFrame:
    """Load canonical bars from the store.

    Parameters
    ----------
    symbols:
        Symbols to load (list or comma-separated string); ``None`` loads every stored symbol.
        An unknown symbol raises :class:`~rltrade.errors.UnknownSymbolError`.
    start, end:
        Inclusive bounds (a date-only ``end`` includes that whole day).
    freq:
        ``1d``, ``1h`` or ``1min``.
    store:
        Store location; default ``$RLTRADE_STORE`` or ``./rltrade-data``.
    calendar:
        An exchange-calendars code (``XNYS``); when given, the sessions each symbol misses are
        logged and put in ``frame.attrs["missing_sessions"]`` (symbol -> DatetimeIndex).

    Returns
    -------
    pandas.DataFrame
        Columns ``symbol, timestamp`` (UTC), ``open, high, low, close, volume`` (and
        ``adj_close`` where the source has it), sorted by (timestamp, symbol). ``attrs`` holds
        ``close_only`` and ``adjusted`` (per symbol), ``freq`` and ``content_hash``.
    """
    frame = BarStore(store).load(symbols, start, end, freq)
    if calendar is not None:
        from rltrade.data.calendars import missing_sessions

        missing = missing_sessions(frame, calendar)
        frame.attrs["missing_sessions"] = missing
        for sym, sessions in missing.items():
            if len(sessions):
                log.warning("%s misses %d %s sessions (first %s)", sym, len(sessions), calendar, sessions[0].date())
    return frame
