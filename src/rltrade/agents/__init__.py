"""Agents: the ``Agent`` protocol and the ``agent.kind`` registry (:mod:`rltrade.agents.base`).

Stable-Baselines3 algorithms are the first kind (:mod:`rltrade.agents.sb3`, built by
:mod:`rltrade.agents.factory`).
"""
