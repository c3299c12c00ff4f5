"""Feature scaling of observations, fitted on the training range only.

The envs emit raw feature values. A scaler (:mod:`rltrade.features.normalize`) is fitted on the
features of the *training* bars (pooled over symbols, one mean/std or min/max per feature) and
then applied unchanged to every observation, in training and in the backtest, by a wrapper of
:mod:`rltrade.envs.wrappers` (re-exported here): :class:`ScaledObservation` (a Gymnasium
``ObservationWrapper``) or :class:`VecScaledObservation` (an SB3 ``VecEnvWrapper``). Only the
feature entries of the observation are scaled; weights, cash, prices and holdings pass unchanged.
The fitted scaler is stored in the run's manifest.
"""

from __future__ import annotations

from rltrade.envs.factory import fit_feature_scaler
from rltrade.envs.wrappers import ScaledObservation, VecScaledObservation, observation_affine

__all__ = ["ScaledObservation", "VecScaledObservation", "fit_feature_scaler", "observation_affine"]
