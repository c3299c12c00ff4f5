"""Daily signals of a trained run: the job, the cache, the export and the independent cross-check.

- :mod:`rltrade.signals.compute`: :func:`compute_signals` (after the close of T, the target
  weights for T+1 from data up to T, stored in the signal cache of :mod:`rltrade.db.signals`)
  and :func:`compute_range` (every missing day of a range);
- :mod:`rltrade.signals.export`: the Quantopian self-serve–style table ``date, symbol, signal,
  weight`` as CSV or Parquet (:func:`export_signals`);
- :mod:`rltrade.signals.crosscheck`: the export backtested in bt next to rltrade's own backtest
  of the run (:func:`crosscheck`; the ``crosscheck`` extra).

They read runs through :mod:`rltrade.runs` (``read_manifest``, ``load_policy``, ``Run.open``).
"""

from rltrade.signals.compute import SignalError, compute_range, compute_signals
from rltrade.signals.crosscheck import CrossCheck, crosscheck
from rltrade.signals.export import export_signals, export_table, read_export

__all__ = [
    "CrossCheck",
    "SignalError",
    "compute_range",
    "compute_signals",
    "crosscheck",
    "export_signals",
    "export_table",
    "read_export",
]
