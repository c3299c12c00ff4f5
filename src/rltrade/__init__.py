"""rltrade: deep reinforcement learning for trading, from market data to broker."""

__version__ = "0.1.0"
