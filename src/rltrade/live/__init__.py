"""The live loop: a trained run's daily decisions sent to a broker (paper, Alpaca, Interactive Brokers).

- :mod:`rltrade.live.config`: the live config (:class:`LiveConfig`: run, account, limits, broker
  sections; no secrets);
- :mod:`rltrade.live.loop`: the sessions (:class:`LiveLoop`), the sizing (:func:`plan_orders`)
  and :func:`run_live`, what ``rltrade live`` calls.

docs/live.md is the guide: setup of real paper accounts, the safety rules, what is tested how.
"""

from rltrade.live.config import LiveConfig, load_live_config, parse_live_config
from rltrade.live.loop import (
    Comparison,
    LiveError,
    LiveLoop,
    LiveReport,
    LiveRun,
    PlannedOrder,
    SessionResult,
    StaleData,
    open_live_run,
    plan_orders,
    post_cost_fraction,
    resolve_run,
    run_live,
)

__all__ = [
    "Comparison",
    "LiveConfig",
    "LiveError",
    "LiveLoop",
    "LiveReport",
    "LiveRun",
    "PlannedOrder",
    "SessionResult",
    "StaleData",
    "load_live_config",
    "open_live_run",
    "parse_live_config",
    "plan_orders",
    "post_cost_fraction",
    "resolve_run",
    "run_live",
]
