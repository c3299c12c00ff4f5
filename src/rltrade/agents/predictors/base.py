"""What the LSTM and the CNN share: scalers, pooled windows, the training loop, prediction and files.

A subclass of :class:`WindowModel` names its network (``_build``), its target (``_targets``,
``_target_stats``, ``_train_form``), its loss and how a network output becomes the published
prediction (``_convert``); everything else is here.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray
from torch import nn

from rltrade.agents.predictors.samples import (
    INPUT_COLUMNS,
    DateLike,
    IntArray,
    PredictorError,
    bound,
    check_no_overlap,
    chronological_split,
    predictor_inputs,
    utc,
)
from rltrade.features import MinMaxNormalizer, ZScoreNormalizer

FloatArray = NDArray[np.float64]

SCALERS: dict[str, type[ZScoreNormalizer] | type[MinMaxNormalizer]] = {
    "zscore": ZScoreNormalizer,
    "minmax": MinMaxNormalizer,
}
"""Values of ``scaler``: how each input column is scaled (statistics of the training bars)."""
SCALINGS: tuple[str, ...] = ("symbol", "pooled")
"""Values of ``scaling``: one set of statistics per symbol, or one for all symbols."""

FORMAT = "rltrade.predictor/1"  # written into every saved file, checked on load
_CLOSE = INPUT_COLUMNS.index("close")
# Prediction runs in chunks of this many windows, each symbol's from its first window and the last
# chunk padded: a window's output then never depends on how many bars follow it (bit for bit,
# which the lookahead guard checks), as float kernels may differ with the batch shape.
_CHUNK = 512


@dataclass
class History:
    """A fit: per epoch the mean training loss over its batches and the validation loss (NaN without);
    the epoch whose weights were kept, whether patience ran out, and the numbers of samples."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    n_train: int = 0
    n_val: int = 0


@dataclass(frozen=True)
class CommonSettings:
    """Settings of both predictors (see :class:`WindowModel`)."""

    window: int = 30
    epochs: int = 10
    patience: int = 3
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    threads: int = 1
    scaler: str = "zscore"
    scaling: str = "symbol"


@dataclass
class _Pool:
    """Every symbol's scaled inputs stacked into ``x`` (``[rows, 8]``, float32), with per-row metadata."""

    x: torch.Tensor
    close: FloatArray  # raw close of each row
    symbol: NDArray[Any]
    stamps: pd.DatetimeIndex
    rows: dict[str, tuple[int, int]]  # symbol -> its rows start .. stop of x


def _windows(x: torch.Tensor, ends: IntArray, window: int) -> torch.Tensor:
    """``[len(ends), window, 8]``: rows ``end − window + 1 .. end`` of ``x`` for each end row."""
    rows = torch.from_numpy(ends)[:, None] + torch.arange(1 - window, 1)[None, :]
    return x[rows]


@contextmanager
def _threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` threads, then restore the process's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class WindowModel:
    """A network over windows of the 8 inputs, fitted with a chronological split and early stopping.

    Settings (keywords; the subclass's settings class adds the network's):

    ``window`` bars per sample; ``epochs`` at most; ``patience`` epochs without a lower validation
    loss before stopping; ``batch_size``; ``lr`` (Adam); ``seed`` (initial weights and shuffling);
    ``threads`` (torch CPU threads while fitting and predicting); ``scaler`` (:data:`SCALERS`);
    ``scaling`` (:data:`SCALINGS`).

    Attributes
    ----------
    symbols:
        The symbols whose scalers were fitted (empty with ``scaling="pooled"``).
    offset, scale:
        ``[len(symbols) or 1, 8]`` scaler statistics: inputs become ``(x − offset) / scale``.
    target_stats:
        What the training targets said (the subclass documents it).
    history:
        The last fit's :class:`History`.
    """

    kind: ClassVar[str]
    settings_class: ClassVar[type[CommonSettings]]
    output_name: ClassVar[str]
    _positive: ClassVar[tuple[str, ...]] = ()  # the subclass's settings that must be >= 1

    def __init__(self, **settings: Any) -> None:
        try:
            self.settings = self.settings_class(**settings)
        except TypeError as exc:
            raise PredictorError(f"{self.kind} predictor: {exc}") from exc
        self._check_settings()
        self.net: nn.Module | None = None
        self.symbols: list[str] = []
        self.offset: FloatArray = np.zeros((0, len(INPUT_COLUMNS)))
        self.scale: FloatArray = np.ones((0, len(INPUT_COLUMNS)))
        self.target_stats: list[float] = []
        self.history = History()

    # --- what a subclass defines ----------------------------------------------------------------

    def _build(self) -> nn.Module:
        raise NotImplementedError

    def _targets(self, close: FloatArray, ends: IntArray) -> FloatArray:
        """The targets of the samples ending at rows ``ends``, from the pooled raw closes."""
        raise NotImplementedError

    def _target_stats(self, train_targets: FloatArray) -> list[float]:
        raise NotImplementedError

    def _train_form(self, targets: FloatArray) -> FloatArray:
        """Targets as the network learns them (with :attr:`target_stats`)."""
        return targets

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _convert(self, out: FloatArray, close: FloatArray) -> FloatArray:
        """Network outputs of windows whose last bar has close ``close`` → the published predictions."""
        raise NotImplementedError

    # --- fit ------------------------------------------------------------------------------------

    def fit(self, bars: pd.DataFrame, train_end: DateLike, val_end: DateLike | None = None) -> History:
        """Fit the scalers and the network from their seeded start on ``bars`` up to ``val_end``.

        Training samples: target bar ≤ ``train_end``; validation samples: whole window after
        ``train_end``, target bar ≤ ``val_end`` (:func:`chronological_split`, per symbol, then
        pooled). Scalers and target statistics use training bars only. After each epoch the
        validation loss is measured; the weights of the best epoch are kept and training stops
        after ``patience`` epochs without improvement.

        Parameters
        ----------
        bars:
            Canonical bars of one or more symbols (complete OHLCV); rows after ``val_end`` are
            dropped before anything is computed.
        train_end, val_end:
            Last training and validation bar (inclusive; a date covers its whole day). Without
            ``val_end`` all ``epochs`` run and the last weights are kept.

        Returns
        -------
        The :class:`History` (also :attr:`history`).
        """
        s = self.settings
        stop = bound(val_end if val_end is not None else train_end)
        inputs = predictor_inputs(bars.loc[utc(bars["timestamp"]) < stop])
        self._fit_scalers(inputs, bound(train_end))
        pool = self._pool(inputs)
        train, val = [], []
        for start, stop_row in pool.rows.values():
            split = chronological_split(pool.stamps[start:stop_row], s.window, train_end, val_end)
            train.append(split.train + start)
            val.append(split.val + start)
        ends, val_ends = np.concatenate(train), np.concatenate(val)
        if len(ends) == 0:
            raise PredictorError(
                f"{self.kind} predictor: no training sample has its target bar by {train_end} "
                f"(window {s.window}, after the 199-bar SMA 200 warm-up)"
            )
        check_no_overlap(pool.stamps[ends + 1], pool.stamps[val_ends - s.window + 1])
        train_targets = self._targets(pool.close, ends)
        self.target_stats = self._target_stats(train_targets)
        y, y_val = self._train_form(train_targets), self._train_form(self._targets(pool.close, val_ends))
        with _threads(s.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(s.seed)
            self.net = self._build()
            self.history = self._train(pool.x, ends, y, val_ends, y_val)
        return self.history

    def _fit_scalers(self, inputs: pd.DataFrame, train_stop: pd.Timestamp) -> None:
        training = inputs.loc[utc(inputs.index.get_level_values("timestamp")) < train_stop]
        scaler = SCALERS[self.settings.scaler]
        if self.settings.scaling == "pooled":
            fitted = scaler().fit(training.to_numpy())
            self.symbols = []
            self.offset, self.scale = np.asarray(fitted.offset)[None, :], np.asarray(fitted.scale)[None, :]
            return
        names = [str(name) for name in inputs.index.unique("symbol")]
        have = set(training.index.unique("symbol"))
        if lacking := [name for name in names if name not in have]:
            raise PredictorError(f"{self.kind} predictor: no training bar (after the SMA 200 warm-up) for {lacking}")
        fits = [scaler().fit(training.xs(name, level="symbol").to_numpy()) for name in names]
        self.symbols = names
        self.offset = np.stack([np.asarray(f.offset) for f in fits])
        self.scale = np.stack([np.asarray(f.scale) for f in fits])

    def _pool(self, inputs: pd.DataFrame) -> _Pool:
        """Scale ``inputs`` (rows sorted by symbol, then time) with the fitted statistics."""
        symbols = inputs.index.get_level_values("symbol").to_numpy()
        values = inputs.to_numpy(dtype=np.float64)
        names, starts, counts = np.unique(symbols, return_index=True, return_counts=True)
        if self.symbols:
            if unknown := sorted(set(names.tolist()) - set(self.symbols)):
                raise PredictorError(f"{self.kind} predictor: no scaler for {unknown}; it was fitted on {self.symbols}")
            which = np.searchsorted(np.asarray(self.symbols), symbols)
        else:
            which = np.zeros(len(symbols), dtype=np.int64)
        scaled = (values - self.offset[which]) / self.scale[which]
        return _Pool(
            x=torch.from_numpy(scaled.astype(np.float32)),
            close=values[:, _CLOSE],
            symbol=symbols,
            stamps=utc(inputs.index.get_level_values("timestamp")),
            rows={str(n): (int(a), int(a + c)) for n, a, c in zip(names, starts, counts, strict=True)},
        )

    def _train(self, x: torch.Tensor, ends: IntArray, y: FloatArray, val_ends: IntArray, y_val: FloatArray) -> History:
        s, net = self.settings, self.net
        assert net is not None
        targets, val_targets = torch.from_numpy(y.astype(np.float32)), torch.from_numpy(y_val.astype(np.float32))
        optimizer = torch.optim.Adam(net.parameters(), lr=s.lr)
        generator = torch.Generator().manual_seed(s.seed)
        history = History(n_train=len(ends), n_val=len(val_ends))
        best_state, best_loss = copy.deepcopy(net.state_dict()), math.inf
        for epoch in range(s.epochs):
            net.train()
            total = 0.0
            # Shuffled within the training samples only; validation samples never enter a batch.
            for batch in torch.randperm(len(ends), generator=generator).split(s.batch_size):
                optimizer.zero_grad()
                loss = self._loss(net(_windows(x, ends[batch.numpy()], s.window)), targets[batch])
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            history.train_loss.append(total / len(ends))
            val_loss = math.nan
            if len(val_ends):
                val_loss = float(self._loss(torch.from_numpy(self._outputs(x, val_ends)), val_targets))
            history.val_loss.append(val_loss)
            if not len(val_ends) or val_loss < best_loss:
                best_state, best_loss, history.best_epoch = copy.deepcopy(net.state_dict()), val_loss, epoch
            elif epoch - history.best_epoch >= s.patience:
                history.stopped_early = True
                break
        net.load_state_dict(best_state)
        return history

    def _outputs(self, x: torch.Tensor, ends: IntArray) -> NDArray[np.float32]:
        """The network's raw outputs for the windows ending at rows ``ends`` (eval mode, no gradient)."""
        assert self.net is not None
        self.net.eval()
        parts = []
        with torch.no_grad():
            for i in range(0, len(ends), _CHUNK):
                chunk = ends[i : i + _CHUNK]
                padded = np.concatenate([chunk, np.full(_CHUNK - len(chunk), chunk[-1])])
                parts.append(self.net(_windows(x, padded, self.settings.window)).numpy()[: len(chunk)])
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    # --- predict --------------------------------------------------------------------------------

    def predict(self, bars: pd.DataFrame) -> pd.Series:
        """One prediction per bar that ends a full window, made at that bar's close about the next bar.

        A symbol's first ``199 + window − 1`` bars have none (the SMA 200 warm-up, then one window);
        its last bar has one (about the bar after the data). The prediction at bar t uses bars ≤ t
        only. To predict a test range, pass the bars before it too.

        Parameters
        ----------
        bars:
            Canonical bars (complete OHLCV) of symbols the model can scale: the fitted ones with
            ``scaling="symbol"``, any with ``scaling="pooled"``.

        Returns
        -------
        pandas.Series
            float64, named :attr:`output_name`, indexed by (symbol, timestamp of the bar the
            prediction is made at), sorted.
        """
        if self.net is None:
            raise PredictorError(f"{self.kind} predictor: not fitted; call fit() or load() first")
        pool = self._pool(predictor_inputs(bars))
        window = self.settings.window
        per_symbol = [np.arange(start + window - 1, stop, dtype=np.int64) for start, stop in pool.rows.values()]
        with _threads(self.settings.threads):
            out = [self._outputs(pool.x, ends) for ends in per_symbol]
        ends = np.concatenate([np.zeros(0, dtype=np.int64), *per_symbol])
        raw = np.concatenate([np.zeros(0, dtype=np.float32), *out]).astype(np.float64)
        index = pd.MultiIndex.from_arrays([pool.symbol[ends], pool.stamps[ends]], names=["symbol", "timestamp"])
        return pd.Series(self._convert(raw, pool.close[ends]), index=index, name=self.output_name)

    # --- files ----------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write weights, scaler arrays, target statistics, settings and history to one ``torch.save`` file."""
        if self.net is None:
            raise PredictorError(f"{self.kind} predictor: not fitted; nothing to save")
        torch.save(
            {
                "format": FORMAT,
                "kind": self.kind,
                "settings": asdict(self.settings),
                "state": self.net.state_dict(),
                "symbols": list(self.symbols),
                "offset": torch.from_numpy(self.offset),
                "scale": torch.from_numpy(self.scale),
                "target_stats": list(self.target_stats),
                "history": asdict(self.history),
            },
            path,
        )

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """The predictor :meth:`save` wrote to ``path`` (read with ``weights_only=True``: no pickled objects)."""
        data = read_file(path)
        if data["kind"] != cls.kind:
            raise PredictorError(f"{path}: a saved {data['kind']} predictor, not {cls.kind}")
        model = cls(**data["settings"])
        model.symbols = [str(name) for name in data["symbols"]]
        model.offset, model.scale = data["offset"].numpy(), data["scale"].numpy()
        model.target_stats = [float(v) for v in data["target_stats"]]
        model.history = History(**data["history"])
        with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten; keep the global RNG
            model.net = model._build()
        model.net.load_state_dict(data["state"])
        return model

    def _check_settings(self) -> None:
        s = self.settings
        for name in ("window", "epochs", "batch_size", "threads", *self._positive):
            if getattr(s, name) < 1:
                raise PredictorError(f"{self.kind} predictor: {name} must be >= 1, got {getattr(s, name)}")
        if s.patience < 0 or s.lr <= 0:
            raise PredictorError(f"{self.kind} predictor: patience must be >= 0 and lr > 0 (got {s.patience}, {s.lr})")
        if s.scaler not in SCALERS:
            raise PredictorError(f"{self.kind} predictor: scaler must be one of {list(SCALERS)}, got {s.scaler!r}")
        if s.scaling not in SCALINGS:
            raise PredictorError(f"{self.kind} predictor: scaling must be one of {list(SCALINGS)}, got {s.scaling!r}")


def read_file(path: str | Path) -> dict[str, Any]:
    """The dict a predictor's :meth:`~WindowModel.save` wrote (``weights_only=True``)."""
    try:
        data = torch.load(path, weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not its own
        raise PredictorError(f"{path}: not a saved predictor ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PredictorError(f"{path}: not a saved predictor (format {FORMAT} expected)")
    return data
