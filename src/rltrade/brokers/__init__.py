"""Brokers behind one interface (:class:`~rltrade.brokers.base.Broker`): paper, Alpaca, Interactive Brokers.

>>> broker = make_broker("paper", account="demo", initial_cash=100_000)   # doctest: +SKIP

:func:`make_broker` imports a broker's module only when it is asked for, so ``paper`` works
without the Alpaca and IB clients installed.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from rltrade.brokers.base import (
    FINAL_STATUSES,
    Account,
    Broker,
    BrokerError,
    ConnectionLost,
    Fill,
    Order,
    OrderRejected,
    OrderRequest,
    Position,
    client_order_id,
)

#: Broker name -> ``module:class`` (imported on first use).
BROKERS: dict[str, str] = {
    "paper": "rltrade.brokers.paper:PaperBroker",
    "alpaca": "rltrade.brokers.alpaca:AlpacaBroker",
    "ib": "rltrade.brokers.ib:IBBroker",
}

__all__ = [
    "BROKERS",
    "FINAL_STATUSES",
    "Account",
    "Broker",
    "BrokerError",
    "ConnectionLost",
    "Fill",
    "Order",
    "OrderRejected",
    "OrderRequest",
    "PaperBroker",
    "Position",
    "as_fill",
    "as_order",
    "client_order_id",
    "make_broker",
]


def broker_class(name: str) -> type[Any]:
    """The class of broker ``name`` (``paper``, ``alpaca`` or ``ib``), its module imported now."""
    key = name.strip().lower()
    if key not in BROKERS:
        raise BrokerError(f"unknown broker {name!r}; use one of {', '.join(BROKERS)}")
    module, cls = BROKERS[key].split(":")
    found: type[Any] = getattr(importlib.import_module(module), cls)
    return found


def make_broker(name: str, **kwargs: Any) -> Broker:
    """A broker by name, built with ``kwargs`` (see each class: :class:`~rltrade.brokers.paper.PaperBroker`, ...)."""
    broker: Broker = broker_class(name)(**kwargs)
    return broker


def as_order(record: Any) -> Order:
    """An :class:`Order` from anything with its fields, e.g. a :class:`rltrade.db.journal.OrderRecord`."""
    return Order(**{f.name: getattr(record, f.name) for f in dataclasses.fields(Order)})


def as_fill(record: Any) -> Fill:
    """A :class:`Fill` from anything with its fields, e.g. a :class:`rltrade.db.journal.FillRecord`."""
    return Fill(**{f.name: getattr(record, f.name) for f in dataclasses.fields(Fill)})


def __getattr__(name: str) -> Any:
    if name == "PaperBroker":  # lazily: the paper broker pulls in the store, the envs' costs and numba
        return broker_class("paper")
    raise AttributeError(f"module 'rltrade.brokers' has no attribute {name!r}")
