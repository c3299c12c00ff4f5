"""Combined-strategy runs live: seed 002's trading rules (:mod:`rltrade.backtest.rules`) on the day's signals.

A combined run (``strategy: combined``) trades no target weights: after each close its three
signals (the LSTM's forecast against the close, the CNN's P(up), the direct agent's position)
go through :class:`~rltrade.backtest.rules.TradingRules`, whose state (entry prices, the
session's starting equity, the daily stop's halt) carries from one bar to the next. Live, after
the close of T:

1. the signals of every bar from the run's test start to T are made from the bars up to T
   (:class:`rltrade.signals.deciders.RulesModels`: each at its bar, from bars up to it), with
   the run's saved models (the first seed's), and the row of T is taken;
2. the rules' state is read from the database (table ``live_rules_state``, one row per broker,
   account and run), and its positions and cash are replaced by the broker's: the shares held,
   their entry prices (the broker's average price for a position the state did not know), and
   cash = capital − the positions at T's close, so the rules size on the capital;
3. the stops are checked on bar T's prices (:meth:`TradingRules.stop_exits`): a stopped
   position is closed at the next fill (here the backtest fills it inside bar T at the stop
   price: the Broker interface has no stop orders, so a live loop learns of the stop at the
   close; see docs/live.md), and counted as flat for the decision;
4. :meth:`TradingRules.decide` gives the exits and entries (the daily stop flattens and halts),
   which become one target position per symbol; the loop sends the difference with the
   position held, one order per symbol (leg ``rules``), and the new state is stored.

With the stops switched off (and no shorts, which the paper broker refuses), a paper replay of a
combined run therefore trades what the backtest trades, order for order (a test checks it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Column, DateTime, String, Table, Text, select
from sqlalchemy.engine import Engine

from rltrade.backtest.rules import Bar, RulesState, TradingRules
from rltrade.db import METADATA
from rltrade.db.journal import _upsert

LEG = "rules"

RULES_STATE = Table(
    "live_rules_state",
    METADATA,
    Column("broker", String(16), primary_key=True),
    Column("account", String(64), primary_key=True),
    Column("run_id", String(200), primary_key=True),
    Column("as_of", String(10), nullable=False),  # the session the state was decided at
    Column("state", Text, nullable=False),  # RulesState.to_dict() as JSON
    Column("updated_at", DateTime, nullable=False),
)


@dataclass(frozen=True)
class RulesTarget:
    """What the rules want of one symbol after the close of T: a position, and why."""

    shares: float
    reason: str


def load_state(engine: Engine, broker: str, account: str, run_id: str) -> tuple[RulesState, str] | None:
    """The stored rules state of (broker, account, run) and the session it was decided at, or None."""
    RULES_STATE.create(engine, checkfirst=True)
    query = select(RULES_STATE).where(
        RULES_STATE.c.broker == broker, RULES_STATE.c.account == account, RULES_STATE.c.run_id == run_id
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else (RulesState.from_dict(json.loads(row.state)), row.as_of)


def save_state(engine: Engine, broker: str, account: str, run_id: str, as_of: dt.date, state: RulesState) -> None:
    """Store the rules state decided after the close of ``as_of``."""
    RULES_STATE.create(engine, checkfirst=True)
    values = {
        "broker": broker,
        "account": account,
        "run_id": run_id,
        "as_of": as_of.isoformat(),
        "state": json.dumps(state.to_dict()),
        "updated_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
    }
    with engine.begin() as conn:
        _upsert(conn, RULES_STATE, values, ("broker", "account", "run_id"))


def reconciled(
    state: RulesState, held: dict[str, float], avg_price: dict[str, float], closes: np.ndarray, capital: float
) -> RulesState:
    """``state`` with the broker's positions: shares held, entry prices, cash = capital − positions at the closes.

    A position the state holds on the same side keeps its entry price (the rules' stops measure
    from it); a new one takes the broker's average price; a flat one has none.
    """
    shares = np.array([float(held.get(s, 0.0)) for s in state.symbols])
    entry = state.entry_price.copy()
    for j, symbol in enumerate(state.symbols):
        if shares[j] == 0:
            entry[j] = math.nan
        elif state.shares[j] == 0 or np.sign(state.shares[j]) != np.sign(shares[j]) or not np.isfinite(entry[j]):
            entry[j] = float(avg_price.get(symbol, math.nan))
    return dataclasses.replace(state, shares=shares, entry_price=entry, cash=float(capital - shares @ closes))


def decide(
    rules: TradingRules,
    state: RulesState,
    day: dt.date,
    closes: np.ndarray,
    signals: tuple[np.ndarray, np.ndarray, np.ndarray],
    prices: dict[str, np.ndarray | None],
) -> tuple[dict[str, RulesTarget], RulesState, list[str], list[str]]:
    """The rules after the close of ``day``: targets by symbol, the next state, what happened, the decision's order.

    The last item lists the symbols of the decision's orders in the rules' order (entries by
    decreasing ``|rl_signal|``): the backtest fills the entries in that order.
    """
    lstm_up, p_up, rl = signals
    bar = Bar(day.isoformat(), closes, lstm_up, p_up, rl, prices.get("open"), prices.get("high"), prices.get("low"))
    notes: list[str] = []
    target = {s: RulesTarget(float(state.shares[j]), "held") for j, s in enumerate(state.symbols)}
    after = state
    for hit in rules.stop_exits(state, bar):
        symbol = state.symbols[hit.asset]
        held = float(state.shares[hit.asset])
        notes.append(
            f"{symbol}: {hit.reason} at {hit.trigger:g} reached inside the bar of {day} "
            f"({'gap, ' if hit.gap else ''}the backtest fills at {hit.price:g}); closed at the next fill"
        )
        after = after.filled(hit.asset, -held, float(closes[hit.asset]), 0.0)  # flat for the decision
        target[symbol] = RulesTarget(0.0, hit.reason)
    decision = rules.decide(after, bar)
    if decision.halted_now:
        notes.append(f"daily stop: the equity fell below {1 - (rules.daily_stop or 0):.0%} of the session's start")
    for order in decision.orders:
        symbol = state.symbols[order.asset]
        before = "" if target[symbol].reason == "held" else f"{target[symbol].reason}, then "
        if order.action == "exit":
            target[symbol] = RulesTarget(0.0, f"{before}exit ({order.reason})")
        else:
            side = "long" if order.side > 0 else "short"
            target[symbol] = RulesTarget(order.side * order.shares, f"{before}entry ({side})")
    ranked = [state.symbols[order.asset] for order in decision.orders]
    # the state keeps the positions as held (the next session reconciles them with the fills)
    return (
        target,
        dataclasses.replace(decision.state, shares=state.shares, entry_price=state.entry_price),
        notes,
        ranked,
    )
