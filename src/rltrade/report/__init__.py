"""The run report: one self-contained HTML page per training run.

>>> from rltrade.report import write_report
>>> write_report("runs/ppo-portfolio")  # doctest: +SKIP
PosixPath('runs/ppo-portfolio/report.html')
"""

from rltrade.report.html import RunFiles, render_report, write_report

__all__ = ["RunFiles", "render_report", "write_report"]
