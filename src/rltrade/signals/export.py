"""Export a run's signals as a Quantopian self-serve–style table (CSV) or as Parquet.

One row per symbol-day, columns::

    date, symbol, signal, weight

- ``date`` is the **as-of date T**, the day after whose close the signal became known. That is
  how Quantopian's self-serve data were dated: the primary date of a row is "the last complete
  trading day after which you learned about the record", and their pipeline surfaced it on the
  next trading day. So a row dated T is traded on T+1 (at its open with ``next_open`` timing, at
  its close with ``next_close``), never on T itself; dating it T+1 would claim it was known a
  session later than it was and make every consumer shift it back.
- ``signal`` is the policy's score for the symbol (its action component: a logit for the
  long-only portfolio env, where a higher score means a higher weight the same day);
- ``weight`` is the target weight of the symbol for the next session, a fraction of the
  portfolio value (cash is the rest, ``1 - Σ weight``).

The rows come from the signal cache; the days of the range it lacks are computed first
(:func:`rltrade.signals.compute.compute_range`), so an export and the daily job never disagree.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from rltrade.signals.compute import SignalError, compute_range, open_run, parse_day

#: The columns of an export, in order.
EXPORT_COLUMNS = ("date", "symbol", "signal", "weight")
FORMATS = ("csv", "parquet")


def export_table(
    run_dir: str | Path,
    start: Any = None,
    end: Any = None,
    *,
    engine: Any = None,
    store: str | Path | None = None,
) -> pd.DataFrame:
    """The export of ``run_dir``'s signals over [start, end] (defaults: the test start, the store's last day).

    Columns :data:`EXPORT_COLUMNS`; ``date`` holds :class:`datetime.date` values; sorted by (date, symbol).
    """
    rows = compute_range(run_dir, start, end, engine=engine, store=store)
    table = pd.DataFrame(
        {
            "date": rows["as_of"].map(lambda d: pd.Timestamp(d).date()),
            "symbol": rows["symbol"].astype(str),
            "signal": rows["score"].astype(float),
            "weight": rows["weight"].astype(float),
        }
    )
    return table.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)


def default_path(run_id: str, table: pd.DataFrame, fmt: str) -> Path:
    """``<run_id>-signals-<first date>_<last date>.<fmt>`` in the working directory."""
    return Path(f"{run_id}-signals-{table['date'].iloc[0]}_{table['date'].iloc[-1]}.{fmt}")


def write_table(table: pd.DataFrame, path: Path, fmt: str) -> Path:
    """Write an export table atomically (a hidden temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "csv":
        # repr precision: the file holds the cached floats exactly (no %.10g rounding)
        table.to_csv(tmp, index=False)
    else:
        table.to_parquet(tmp, index=False)  # date → Parquet date32
    os.replace(tmp, path)
    return path


def read_export(path: str | Path) -> pd.DataFrame:
    """An export file (CSV or Parquet, by its suffix) back as a table like :func:`export_table`'s."""
    path = Path(path)
    if not path.exists():
        raise SignalError(f"signal export {path} does not exist")
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise SignalError(f"signal export {path} cannot be read: {exc}") from None
    missing = [c for c in EXPORT_COLUMNS if c not in frame.columns]
    if missing:
        raise SignalError(f"signal export {path} lacks column(s) {', '.join(missing)}")
    frame["date"] = frame["date"].map(lambda d: parse_day(d, f"{path.name}: date"))
    frame["symbol"] = frame["symbol"].astype(str)
    return frame[list(EXPORT_COLUMNS)]


def export_signals(
    run_dir: str | Path,
    start: Any = None,
    end: Any = None,
    *,
    format: str = "csv",
    out: str | Path | None = None,
    engine: Any = None,
    store: str | Path | None = None,
) -> Path:
    """Write the export of ``run_dir``'s signals over [start, end] as CSV or Parquet; the file's path.

    ``out`` defaults to :func:`default_path` (in the working directory).
    """
    fmt = format.strip().lower()
    if fmt not in FORMATS:
        raise SignalError(f"--format {format!r}: use one of {', '.join(FORMATS)}")
    table = export_table(run_dir, start, end, engine=engine, store=store)
    path = Path(out) if out is not None else default_path(open_run(run_dir, store).run_id, table, fmt)
    return write_table(table, path, fmt)
