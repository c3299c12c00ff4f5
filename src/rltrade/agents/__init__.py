"""Agents: Stable-Baselines3 algorithms built from configs (:mod:`rltrade.agents.factory`)."""
