"""Optional dependencies: a clear error naming the extra to install, never an ImportError traceback.

The base install is lean; these come with extras (``pip install 'rltrade[ray]'`` and so on):

=============  =====================  ==========================================
extra          packages               needed for
=============  =====================  ==========================================
``ray``        ray                    the ensemble's parallel training, Ray clusters
``tensorboard``  tensorboard          ``agent.tensorboard: true``
``network``    yfinance, alpaca-py    the ``yahoo`` and ``alpaca`` data sources, the Alpaca broker
``ib``         ib_async               the Interactive Brokers broker
``postgres``   psycopg                a PostgreSQL database (``RLTRADE_DB``)
``crosscheck`` bt                     ``rltrade signals crosscheck`` (an independent backtest engine)
``all``        all of the above
=============  =====================  ==========================================
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from rltrade.errors import RLTradeError


class MissingDependencyError(RLTradeError, ImportError):
    """An optional package is not installed; the message names the extra that brings it."""


def available(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` saying ``pip install 'rltrade[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise MissingDependencyError(
            f"{purpose} needs the optional package {top!r}, which is not installed: pip install 'rltrade[{extra}]'"
        ) from None
