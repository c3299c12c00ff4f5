"""The fixed observation layout and the actions of :class:`~rltrade.envs.orderbook.env.OrderBookEnv`.

Agents (the tabular Q-learner among them) index observations with these constants; the layout
only ever grows at the end.

Observation (float32, length :data:`OBS_SIZE`):

=====================  ================================================================
index                  value at decision time t
=====================  ================================================================
``OBS_POSITION`` 0     position / position_limit, in [-1, 1]
``OBS_BID_OPEN`` 1     1.0 when the agent has a live bid order, else 0.0
``OBS_ASK_OPEN`` 2     1.0 when the agent has a live ask order, else 0.0
``OBS_OFI`` 3          order flow imbalance over the trailing window (shares)
``OBS_LOG_RATIO`` 4    log(q^B / q^A) of the displayed best sizes (0.0 if a side is empty)
``OBS_SPREAD`` 5       (ask - bid) / tick (0.0 if a side is empty)
=====================  ================================================================

Actions (``Discrete(6)``), the seed's (qtrader's) six:

``ACTION_NONE`` 0 cancel working orders; ``ACTION_BUY`` 1 market buy; ``ACTION_SELL`` 2 market
sell; ``ACTION_BEST_BID`` 3 keep/place a bid, cancel the ask; ``ACTION_BEST_ASK`` 4 keep/place
an ask, cancel the bid; ``ACTION_BEST_BOTH`` 5 keep/place both.
"""

from __future__ import annotations

OBS_POSITION = 0
OBS_BID_OPEN = 1
OBS_ASK_OPEN = 2
OBS_OFI = 3
OBS_LOG_RATIO = 4
OBS_SPREAD = 5
OBS_SIZE = 6
OBS_NAMES: tuple[str, ...] = ("position", "bid_open", "ask_open", "ofi", "log_book_ratio", "spread_ticks")

ACTION_NONE = 0
ACTION_BUY = 1
ACTION_SELL = 2
ACTION_BEST_BID = 3
ACTION_BEST_ASK = 4
ACTION_BEST_BOTH = 5
N_ACTIONS = 6
ACTION_NAMES: tuple[str, ...] = ("none", "buy", "sell", "best_bid", "best_ask", "best_both")
