"""Backtests and honest evaluation: run a policy over a test range, baselines, metrics, statistics.

- :mod:`rltrade.backtest.runner`: step an env with a policy and record values, weights, trades.
- :mod:`rltrade.backtest.baselines`: buy-and-hold, equal weight, minimum variance, random agent,
  index, on the agent's dates with the agent's costs and timing.
- :mod:`rltrade.backtest.metrics`: performance metrics (empyrical).
- :mod:`rltrade.backtest.stats`: statistics over seeds (bootstrap CI, PSR, Welch t-test).
"""
