"""The run report: one self-contained HTML page per training run (or re-backtest folder).

>>> from rltrade.report import write_report
>>> write_report("runs/ppo-portfolio")  # doctest: +SKIP
PosixPath('runs/ppo-portfolio/report.html')

:mod:`rltrade.report.html` reads the run directory and renders the page;
:mod:`rltrade.report.analytics` computes the statistics it adds to ``metrics.json`` (monthly and
yearly returns, rolling Sharpe and volatility, drawdown episodes, alpha/beta, VaR/CVaR, costs,
exposure, trades). ``docs/report.md`` describes every section.
"""

from rltrade.report.html import RunFiles, render_report, write_report

__all__ = ["RunFiles", "render_report", "write_report"]
