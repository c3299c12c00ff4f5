"""The run directory, owned here: its layout, the manifest, atomic writers and the one reader.

``rltrade run`` / ``rltrade train`` write a run directory; everything that reads one (the
report, the CLI, later the signals job, the brokers and the web page) goes through
:meth:`Run.open`, and :func:`load_policy` rebuilds a trained policy from it.

Layout::

    config.yaml      the validated config (defaults filled in, paths absolute)
    manifest.json    dataset hash, scaler, price basis, annualisation, versions, git commit, seeds
    models/          one model per seed (seed_<s>.zip)
    equity.csv       portfolio value per test bar and strategy
    weights.csv      value weights per bar and strategy
    trades.csv       holdings changes (stock_trading and single_asset envs)
    costs.csv        cost paid per bar and strategy
    metrics.json     metrics per column of equity.csv
    summary.json     statistics over seeds
    quarters.csv     the ensemble's picks (ensemble runs)
    predictors.json  the predictors' out-of-sample scores (combined runs)
    events.csv       entries, exits (signal, stop-loss, take-profit, daily stop) at their fills (combined runs)
    state/           the ensemble's finished quarters (resume)
    report.html      the report
    backtests/<start>_<end>/   re-backtests over other ranges, each with its backtest.json

An order-book run (``strategy: orderbook``) writes its own files instead of the equity tables:
``metrics.json`` (final P&L per agent, the Welch t-test), ``pnl.csv``, ``positions.csv``,
``fills.csv``, ``policy.csv`` (:mod:`rltrade.strategies.orderbook`).
"""

from rltrade.runs.policy import Policy, load_policy
from rltrade.runs.run import Run

__all__ = ["Policy", "Run", "load_policy"]
