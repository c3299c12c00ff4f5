"""What the signal modules share: the rows' columns, the error, a run as the signal job reads it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rltrade.config import RunConfig
from rltrade.errors import RLTradeError

#: The signal rows' columns (the cache's, :data:`rltrade.db.signals.COLUMNS`).
SIGNAL_COLUMNS = ("run_id", "as_of", "symbol", "weight", "score", "seed", "last_bar", "created")


class SignalError(RLTradeError):
    """A signal cannot be computed for that run or date; the message names which and why."""


@dataclass(frozen=True)
class SignalRun:
    """A run directory as the signal job reads it.

    Attributes
    ----------
    run_dir:
        The run directory.
    run_id:
        ``manifest.json``'s ``run_id`` (the directory's name when it was created): the key of its
        rows in the cache, so a renamed directory keeps its signals.
    manifest:
        The run's manifest.
    config:
        The run's config (``data.store`` replaced when another store was given).
    symbols:
        The traded symbols, in the env's order.
    seed:
        The seed whose model decides: the run's first.
    """

    run_dir: Path
    run_id: str
    manifest: dict[str, Any]
    config: RunConfig
    symbols: tuple[str, ...]
    seed: int

    @property
    def store(self) -> str | None:
        """The bar store the run reads (its config's ``data.store``; None: ``$RLTRADE_STORE`` or ./rltrade-data)."""
        return self.config.data.store

    @property
    def test_start(self) -> dt.date:
        """The first date of the run's test range: signals are computed out of sample only, from here on."""
        return self.config.test.start

    @property
    def timing(self) -> str | None:
        """The fill timing the run was backtested with (the manifest's, resolved), else its config's (None: the
        default for its bars)."""
        return self.manifest.get("timing") or self.config.env.timing

    @property
    def column(self) -> str:
        """The column of the deciding seed's backtest in ``equity.csv``: the strategy's group (``direct_rl``,
        ``combined``, ``ensemble``), or a single-agent run's algorithm (``ppo``, ...)."""
        if self.config.strategy != "single":
            return str(self.config.strategy)
        return str(self.manifest.get("algorithm") or "agent").lower()


def current_pick(root: Path) -> str:
    """`` (its current pick: ppo, trading from 2011-04-01)`` of an ensemble run with a ``quarters.csv``, else ``""``."""
    from rltrade.runs import Run

    try:
        quarters = Run.open(root).quarters
    except RLTradeError:
        quarters = None
    if quarters is not None and len(quarters) and {"picked", "trade_start"} <= set(quarters.columns):
        last = quarters.iloc[-1]
        since = last["trade_start"]
        since = since.date() if isinstance(since, pd.Timestamp) else since
        return f" (its current pick: {last['picked']}, trading from {since})"
    return ""
