"""Strategies built on agents: the quarterly ensemble of Yang et al. (:mod:`rltrade.strategies.ensemble`)."""
