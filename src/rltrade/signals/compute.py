"""The daily signal job: after the close of day T, the target weights for T+1 from data up to T only.

>>> from rltrade.signals import compute_signals
>>> compute_signals("runs/quickstart-20261201-220623", "2022-12-30")   # doctest: +SKIP
                run_id       as_of symbol    weight     score  seed   last_bar  created
0  quickstart-20261201-220623  2022-12-30   AAPL  0.046...

What is computed (a single-agent run; the other strategies: :mod:`rltrade.signals.deciders`).
The run's policy (the model of the run's **first seed**, as ``rltrade backtest`` prints first)
trades from the run's test start to T, exactly as the backtest does: its observation carries
the weights it holds, so its state at T must be the one its own trading led to. The action it
then chooses after T's close is turned into target weights by
the env's own rule (softmax of the logits, the long/short scaling, or normalised weights; see
:mod:`rltrade.envs.portfolio`). For the days of the test range, the signals are therefore the
backtest's decisions: the fill of T+1 trades to them.

No lookahead. :func:`compute_signals` loads the bars with ``end=T`` and checks that none is dated
after T before the policy sees them; the row records the timestamp of the last bar the decision
saw (``last_bar``, never after T). The env refuses an episode of one bar, so the range it is
given is closed by a copy of bar T dated a day later; the loop stops at T's observation and never
steps into that copy (checked). :func:`compute_range`, which fills many days at once (the
export's missing days), trades one episode over data up to the last missing day and records the
action after each day: each observation uses bars up to its own day only (the envs' causality,
which the lookahead guard of the env tests checks), and ``tests/signals`` checks that these rows
equal the ones computed day by day from truncated data.

What is supported. Runs of daily bars of the strategies ``single`` (the portfolio env),
``direct_rl``, ``combined`` and ``ensemble`` (its current pick): :mod:`rltrade.signals.deciders`
holds each one's rule. The ``stock_trading`` and ``single_asset`` envs of a single-agent run
trade share counts and positions whose size depends on the next fill price; their signals come
later.

The cache. Rows go to the signal table of the database (:mod:`rltrade.db.signals`; SQLite
``<store>/rltrade.db`` by default, ``RLTRADE_DB`` for any SQLAlchemy URL). Re-running a day
keeps identical rows, replaces changed ones (revised data, with a warning) and never duplicates.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rltrade.config import bar_config, load_config
from rltrade.signals.base import SIGNAL_COLUMNS, SignalError, SignalRun, current_pick

__all__ = [
    "SIGNAL_COLUMNS",
    "SignalError",
    "SignalRun",
    "check_day",
    "check_range",
    "compute_range",
    "compute_signals",
    "current_pick",
    "ingest_new_bars",
    "last_stored_day",
    "load_until",
    "open_run",
    "parse_day",
    "trading_days",
]

log = logging.getLogger(__name__)


def open_run(run_dir: str | Path, store: str | Path | None = None) -> SignalRun:
    """Read ``run_dir`` for the signal job; :class:`SignalError` for a run it cannot compute signals of.

    ``store`` replaces the config's ``data.store`` (the bars moved, or a copy of the store).
    """
    from rltrade.runs.files import read_manifest
    from rltrade.signals.deciders import STRATEGIES

    root = Path(run_dir)
    if not root.is_dir():
        raise SignalError(f"run directory {root} does not exist (expected the output of `rltrade train` or `run`)")
    manifest = read_manifest(root)
    overrides = {"data.store": str(store)} if store is not None else None
    config = bar_config(load_config(root / "config.yaml", overrides), f"config.yaml of {root}")
    if config.strategy not in STRATEGIES:
        raise SignalError(
            f"{root.name}: strategy {config.strategy!r} has no daily signals; they are computed for "
            f"{', '.join(STRATEGIES)} runs"
        )
    if config.strategy == "single" and config.env.type != "portfolio":
        raise SignalError(
            f"{root.name} trades the {config.env.type} env: signals (target weights) are computed for portfolio-env "
            "runs; share-count and position envs come later"
        )
    if config.data.freq != "1d":
        raise SignalError(
            f"{root.name} trades {config.data.freq} bars: signals are daily (after the close); intraday ones come later"
        )
    seeds = [int(s) for s in manifest.get("seeds", [])]
    symbols = tuple(str(s) for s in manifest.get("symbols") or config.data.symbols or ())
    if config.strategy in ("direct_rl", "combined"):  # their models read the symbols in sorted order
        symbols = tuple(sorted(symbols))
    if not seeds or not symbols:
        raise SignalError(f"manifest.json of {root} names no seeds or no symbols: is the run finished?")
    run_id = str(manifest.get("run_id") or root.name)
    return SignalRun(root, run_id, manifest, config, symbols, seeds[0])


# ----------------------------------------------------------------------------------- dates and data
def parse_day(value: Any, what: str = "date") -> dt.date:
    """``value`` (``YYYY-MM-DD``, a date or a timestamp) as a date; :class:`SignalError` naming ``what``."""
    if isinstance(value, dt.datetime | pd.Timestamp):
        return pd.Timestamp(value).date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise SignalError(f"{what} {value!r} is not a date; write it as YYYY-MM-DD, e.g. 2017-01-03") from None


def last_stored_day(run: SignalRun) -> dt.date:
    """The last date every symbol of the run has a bar for in the store."""
    from rltrade.data.store import BarStore

    found = {i.symbol: i for i in BarStore(run.store).info(run.config.data.freq)}
    missing = [s for s in run.symbols if s not in found]
    if missing:
        raise SignalError(
            f"the store {BarStore(run.store).uri} has no {run.config.data.freq} bars of {', '.join(missing)}"
        )
    return min(pd.Timestamp(found[s].last).date() for s in run.symbols)


def load_until(run: SignalRun, day: dt.date) -> pd.DataFrame:
    """The run's bars up to and including ``day`` (none after it: checked), prices on the run's basis."""
    from rltrade.data.adjust import adjust_prices
    from rltrade.data.store import load_bars

    bars = load_bars(list(run.symbols), end=day.isoformat(), freq=run.config.data.freq, store=run.store)
    bars = adjust_prices(bars, run.config.data.prices)
    after = pd.DatetimeIndex(bars["timestamp"]).tz_convert("UTC").normalize() > pd.Timestamp(day, tz="UTC")
    if after.any():  # the store's end bound is the guarantee; this check makes it visible and unconditional
        raise SignalError(f"lookahead guard: the bars loaded for {day} reach {bars['timestamp'].max()}")
    return bars


def trading_days(bars: pd.DataFrame, symbols: tuple[str, ...]) -> list[dt.date]:
    """The dates on which every symbol has a bar (the bars the env trades), sorted."""
    stamps = pd.DatetimeIndex(bars["timestamp"]).tz_convert("UTC").tz_localize(None).normalize()
    per_day = pd.Series(bars["symbol"].to_numpy()).groupby(stamps.to_numpy()).nunique()
    return [pd.Timestamp(d).date() for d in per_day.index[per_day.to_numpy() == len(symbols)]]


def check_range(run: SignalRun, day: dt.date, last: dt.date) -> None:
    """:class:`SignalError` for an as-of ``day`` before the run's test range or after ``last``, the store's last day."""
    if day < run.test_start:
        raise SignalError(
            f"{day} is before the test range of {run.run_dir.name} (from {run.test_start}): signals are computed "
            "out of sample only"
        )
    if day > last:
        raise SignalError(
            f"{day} is after the last bar in the store ({last}): ingest newer bars first (--update-data) "
            "or pick an earlier date"
        )


def check_day(run: SignalRun, bars: pd.DataFrame, day: dt.date) -> None:
    """:class:`SignalError` unless ``day`` is a trading day of ``bars`` (every symbol has a bar that day)."""
    days = trading_days(bars, run.symbols)
    if not days:
        raise SignalError(f"the store has no bars of {', '.join(run.symbols)} up to {day}")
    if day not in set(days):
        before = max(d for d in days if d < day) if days[0] < day else None
        hint = f"; the trading day before it is {before}" if before is not None else ""
        raise SignalError(f"{day} is not a trading day in the data of {', '.join(run.symbols)}{hint}")


def ingest_new_bars(run: SignalRun) -> int:
    """Ingest the bars the run's source has after the store's last ones; the number of new rows (logged).

    An embedded ``sample:`` source never has new bars: nothing is fetched, and a log line says so.
    """
    from rltrade.data.sources import fetch
    from rltrade.data.store import BarStore

    source = run.config.data.source
    if source.startswith("sample:"):
        log.info("%s is an embedded sample: it has no new bars to ingest", source)
        return 0
    store = BarStore(run.store)
    found = {i.symbol: i for i in store.info(run.config.data.freq)}
    stored = [pd.Timestamp(found[s].last) for s in run.symbols if s in found]
    since = min(stored).date().isoformat() if len(stored) == len(run.symbols) else None
    log.info("ingesting %s (%s) from %s into %s", source, ", ".join(run.symbols), since or "the start", store.uri)
    results = store.ingest(fetch(source, list(run.symbols), since, None, run.config.data.freq), source=source)
    new = sum(max(r.rows_after - r.rows_before, 0) for r in results)
    log.info("%d new bar(s) ingested; the store now ends on %s", new, last_stored_day(run))
    return new


def _engine(engine: Any, run: SignalRun) -> Any:
    if engine is not None:
        return engine
    from rltrade.db import connect

    return connect(store=run.store)


def _store_rows(engine: Any, run: SignalRun, rows: pd.DataFrame) -> dict[str, int]:
    from rltrade.db.signals import write_signals

    counts = write_signals(engine, rows)
    if counts["replaced"]:
        log.warning(
            "%s: %d day(s) of cached signals differed from the recomputed ones and were replaced (revised data?)",
            run.run_id,
            counts["replaced"],
        )
    return counts


def compute_signals(
    run_dir: str | Path,
    date: Any = None,
    *,
    update_data: bool = False,
    engine: Any = None,
    store: str | Path | None = None,
) -> pd.DataFrame:
    """Compute and cache the target weights for the session after ``date``, from data up to ``date`` only.

    Parameters
    ----------
    run_dir:
        A single-agent run directory (``rltrade train`` / ``rltrade run``) of the portfolio env.
    date:
        The as-of date T (``YYYY-MM-DD``, a date or a timestamp): a trading day of the run's data,
        from the run's test start on. Default: the last day the store has bars of every symbol.
    update_data:
        First ingest the new bars of the run's ``data.source`` (an embedded sample has none).
    engine:
        A SQLAlchemy engine of the signal cache; default :func:`rltrade.db.connect` on the run's
        store (``$RLTRADE_DB`` when set).
    store:
        Another bar store than the run config's ``data.store``.

    Returns
    -------
    pandas.DataFrame
        The cached rows of that day, one per symbol: ``run_id, as_of, symbol, weight, score, seed,
        last_bar, created`` (:mod:`rltrade.db.signals`).

    Raises
    ------
    SignalError
        Not a run it can compute signals of, ``date`` not a date, not a trading day, before the
        test range or after the last bar in the store.
    """
    from rltrade.db.signals import read_signals
    from rltrade.signals.deciders import decisions

    run = open_run(run_dir, store)
    if update_data:
        ingest_new_bars(run)
    last = last_stored_day(run)
    day = parse_day(date) if date is not None else last
    check_range(run, day, last)
    bars = load_until(run, day)
    check_day(run, bars, day)
    # the last bar of the data handed to the policy: by load_until, never after the as-of date
    seen = pd.Timestamp(bars["timestamp"].max()).tz_convert("UTC").tz_localize(None)
    rows = decisions(run, bars, [day], seen)
    engine = _engine(engine, run)
    counts = _store_rows(engine, run, rows)
    state = next(k for k, v in counts.items() if v)
    log.info("%s: signals as of %s for the next session %s (%d symbols)", run.run_id, day, state, len(rows))
    return read_signals(engine, run.run_id, day, day)


def compute_range(
    run_dir: str | Path,
    start: Any = None,
    end: Any = None,
    *,
    engine: Any = None,
    store: str | Path | None = None,
) -> pd.DataFrame:
    """The cached signals of every trading day in [start, end], computing the days the cache lacks.

    ``start`` defaults to the run's test start (an earlier one is refused: in sample), ``end`` to
    the last day of the store. The missing days are decided in one episode over the data up to the
    last of them (see the module docstring); the days already cached are left as they are.
    """
    from rltrade.db.signals import cached_days, read_signals
    from rltrade.signals.deciders import decisions

    run = open_run(run_dir, store)
    last = last_stored_day(run)
    lo = parse_day(start, "start") if start is not None else run.test_start
    hi = parse_day(end, "end") if end is not None else last
    if lo < run.test_start:
        raise SignalError(
            f"start {lo} is before the test range of {run.run_dir.name} (from {run.test_start}): signals are "
            "computed out of sample only"
        )
    if hi < lo:
        raise SignalError(f"end {hi} is before start {lo}")
    if hi > last:
        raise SignalError(
            f"end {hi} is after the last bar in the store ({last}): ingest newer bars first or pick an earlier end"
        )
    bars = load_until(run, hi)
    days = [d for d in trading_days(bars, run.symbols) if lo <= d <= hi]
    if not days:
        raise SignalError(f"no trading day of {', '.join(run.symbols)} between {lo} and {hi} in the store")
    engine = _engine(engine, run)
    missing = sorted(set(days) - cached_days(engine, run.run_id, lo, hi))
    if missing:
        log.info("%s: computing the signals of %d day(s) (%s..%s)", run.run_id, len(missing), missing[0], missing[-1])
        until = pd.DatetimeIndex(bars["timestamp"]).tz_convert("UTC").normalize() <= pd.Timestamp(missing[-1], tz="UTC")
        part = bars.loc[np.asarray(until)].reset_index(drop=True)
        part.attrs = dict(bars.attrs)
        _store_rows(engine, run, decisions(run, part, missing))
    return read_signals(engine, run.run_id, lo, hi)
