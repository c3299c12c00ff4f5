"""Strategies: what turns a config into a run directory, selected by the config's ``strategy``.

- :mod:`rltrade.strategies.base`: the ``Strategy`` protocol, the registry, ``check_config``, the run's data;
- :mod:`rltrade.strategies.single`: one agent per seed (``strategy: single``);
- :mod:`rltrade.strategies.ensemble`: the quarterly ensemble of Yang et al. (``strategy: ensemble``).
"""
