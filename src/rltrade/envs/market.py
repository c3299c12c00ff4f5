"""Market data for the envs: canonical bars and features turned into aligned numpy arrays, once.

Every env precomputes at construction what its ``step()`` reads, so that ``step()`` touches no
pandas: prices as ``[T, N]`` float64 matrices (T timestamps, N symbols, symbols sorted) and
features as a ``[T, F, N]`` tensor.

Missing bars. The envs trade a fixed set of symbols at every timestamp, so they need a bar
for each (timestamp, symbol) pair. :class:`Market` keeps the timestamps at which every symbol
has begun and none has ended (it trims leading rows before the latest first bar and trailing
rows after the earliest last bar, and logs it) and refuses a gap inside that range with a
:class:`~rltrade.errors.DataValidationError` naming the symbol and the first missing
timestamp. Nothing is filled, forwards or backwards.

Corporate actions. Bars that carry ``adj_close`` are traded on split- and dividend-adjusted
prices: :func:`rltrade.data.adjust.adjust_prices` scales open/high/low/close by ``adj_close /
close`` before anything else (features included), so a split is not a crash. To trade the raw
close, drop ``adj_close`` first (``adjust_prices(bars, "raw")``; ``data.prices: raw`` in a config).

Train/test splits. Features are computed on the full history, then ``start``/``end`` select
the bars the episodes may use. A test period therefore starts with warmed-up features, which
is still causal: the feature row for bar t uses bars <= t only.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from rltrade.data.adjust import adjust_prices
from rltrade.envs.timing import EnvConfigError
from rltrade.errors import DataValidationError
from rltrade.features import build_features, feature_columns, feature_warmup
from rltrade.features.turbulence import turbulence_index

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
PRICE_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume")


def _as_utc(value: str | pd.Timestamp | np.datetime64) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


class Market:
    """Aligned price matrices and feature tensor of a set of symbols, with the usable bar range.

    Parameters
    ----------
    bars:
        Canonical bars (``symbol, timestamp, open, high, low, close, volume[, adj_close]``); any row
        order. Close-only sources (NaN open/high/low/volume) are accepted. With ``adj_close``, the
        prices are adjusted (see the module docstring).
    features:
        Feature names (see :data:`rltrade.features.FEATURES`) in observation order. May be empty.
    feature_params:
        Feature parameters passed to :func:`rltrade.features.build_features` (e.g. ``n_diffs``).
    start, end:
        Inclusive bounds of the bars episodes may use (train/test split); None = no bound. Features
        are computed on all bars before this selection.
    history:
        Number of consecutive feature rows one observation needs (``look_back``); the first
        usable bar is the first one whose ``history`` rows are all past the feature warm-up.
    min_first:
        Lower bound of the first usable bar index, for other warm-ups (a volatility window,
        the turbulence index).

    Attributes
    ----------
    times:
        ``[T]`` datetime64[ns] (UTC) timestamps.
    symbols:
        The N symbols, sorted.
    open, high, low, close, volume:
        ``[T, N]`` float64 (NaN where the source lacks the field).
    features:
        ``[T, F, N]`` float64 feature tensor; :attr:`feature_names` names the F columns.
    first, last:
        Index of the first bar an episode may start at (the first observation) and of the last
        bar it may reach. ``last - first >= 1``.
    has_open:
        True when ``open`` is finite on every bar from ``first`` to ``last``.

    Raises
    ------
    DataValidationError
        Missing columns, non-positive or missing closes, a symbol with a gap, NaN features inside
        the usable range, or too few bars after warm-up and the ``start``/``end`` selection.
    """

    def __init__(
        self,
        bars: pd.DataFrame,
        features: Sequence[str] = ("log_return",),
        *,
        feature_params: Mapping[str, Any] | None = None,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
        history: int = 1,
        min_first: int = 0,
    ) -> None:
        params = dict(feature_params or {})
        names = [features] if isinstance(features, str) else list(features)
        if history < 1:
            raise DataValidationError(f"history must be >= 1, got {history}")
        frame = self._aligned(bars)
        times = pd.DatetimeIndex(pd.unique(frame["timestamp"]))
        symbols = pd.unique(frame["symbol"])
        n_times, n_symbols = len(times), len(symbols)
        self.times: NDArray[np.datetime64] = times.tz_convert("UTC").tz_localize(None).to_numpy("datetime64[ns]")
        self.symbols: tuple[str, ...] = tuple(str(s) for s in symbols)
        fields = {}
        for name in PRICE_FIELDS:
            if name in frame.columns:
                values = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                values = np.full(len(frame), np.nan)
            fields[name] = np.ascontiguousarray(values.reshape(n_times, n_symbols))
        self.open: FloatArray = fields["open"]
        self.high: FloatArray = fields["high"]
        self.low: FloatArray = fields["low"]
        self.close: FloatArray = fields["close"]
        self.volume: FloatArray = fields["volume"]
        self.feature_names: tuple[str, ...] = tuple(feature_columns(names, **params)) if names else ()
        if names:
            table = build_features(frame, names, **params)
            matrix = table[list(self.feature_names)].to_numpy(dtype=np.float64)  # rows (t, symbol) in order
            self.features: FloatArray = np.ascontiguousarray(
                matrix.reshape(n_times, n_symbols, len(self.feature_names)).transpose(0, 2, 1)
            )
            warmup = feature_warmup(names, **params)
        else:
            self.features = np.zeros((n_times, 0, n_symbols))
            warmup = 0
        self.warmup = warmup
        self.feature_request: tuple[tuple[str, ...], tuple[tuple[str, Any], ...]] = (
            tuple(names),
            tuple(sorted(params.items())),
        )
        """The feature names and parameters the features were built with (see :meth:`uses_features`)."""
        self._turbulence: dict[int, FloatArray] = {}  # window -> index; shared by every window of this market
        self._select(start, end, history, min_first)

    def _select(
        self,
        start: str | pd.Timestamp | None,
        end: str | pd.Timestamp | None,
        history: int,
        min_first: int,
    ) -> None:
        """Set :attr:`first`, :attr:`last`, :attr:`history` and :attr:`has_open`; check the range."""
        if history < 1:
            raise DataValidationError(f"history must be >= 1, got {history}")
        n_times = self.n_times
        first = max(self.warmup + history - 1, int(min_first), 0)
        last = n_times - 1
        if start is not None:
            first = max(first, int(np.searchsorted(self.times, _as_utc(start).tz_localize(None).to_datetime64())))
        if end is not None:
            last = min(
                last, int(np.searchsorted(self.times, _as_utc(end).tz_localize(None).to_datetime64(), "right")) - 1
            )
        if last - first < 1:
            raise DataValidationError(
                f"only {max(last - first + 1, 0)} usable bar(s) between {start or 'the first bar'} and "
                f"{end or 'the last bar'} after a warm-up of {first} bar(s) ({n_times} bars in all); an episode "
                "needs at least 2: widen start/end, load more history or use features with a shorter warm-up"
            )
        self.first = first
        self.last = last
        self.history = history
        self._check_range()
        self.has_open = bool(np.isfinite(self.open[first : last + 1]).all())

    def window(
        self,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
        *,
        history: int = 1,
        min_first: int = 0,
    ) -> Market:
        """This market with other usable bounds: a view sharing its price arrays, features and turbulence.

        The bounds are computed from the whole history exactly as the constructor computes them, so
        ``Market(bars, f, start=s, end=e, history=h, min_first=m)`` and
        ``Market(bars, f).window(s, e, history=h, min_first=m)`` hold the same numbers. Nothing is
        copied: the arrays are shared (do not write to them).

        Parameters
        ----------
        start, end, history, min_first:
            As for the constructor.

        Raises
        ------
        DataValidationError
            As for the constructor: too few bars, or NaN features or bad closes inside the new range.
        """
        view = copy.copy(self)  # shallow: the arrays and the turbulence memo are shared
        view._select(start, end, history, min_first)
        return view

    def uses_features(self, features: Sequence[str], feature_params: Mapping[str, Any] | None = None) -> bool:
        """True when this market's features were built from ``features`` with ``feature_params``."""
        names = [features] if isinstance(features, str) else list(features)
        return self.feature_request == (tuple(names), tuple(sorted(dict(feature_params or {}).items())))

    def turbulence(self, window: int) -> FloatArray:
        """Turbulence index of the closes (:func:`~rltrade.features.turbulence.turbulence_index`), a fresh copy.

        Computed once per market and ``window``: every :meth:`window` of this market reuses it.
        """
        if window not in self._turbulence:
            self._turbulence[window] = np.asarray(turbulence_index(self.close, window), dtype=np.float64)
        return self._turbulence[window].copy()

    @staticmethod
    def _aligned(bars: pd.DataFrame) -> pd.DataFrame:
        """Bars sorted by (timestamp, symbol), trimmed to the common range, every pair present."""
        missing = [c for c in ("symbol", "timestamp", "close") if c not in bars.columns]
        if missing:
            raise DataValidationError(f"bars lack the column(s) {missing}; expected canonical bars (rltrade.data)")
        if len(bars) == 0:
            raise DataValidationError("bars are empty")
        frame = adjust_prices(bars).sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)
        if frame.duplicated(["timestamp", "symbol"]).any():
            row = frame.loc[frame.duplicated(["timestamp", "symbol"])].iloc[0]
            raise DataValidationError(
                f"duplicate bar {row['symbol']} {row['timestamp']}; validate the bars with rltrade.data first"
            )
        spans = frame.groupby("symbol", sort=True)["timestamp"].agg(["min", "max", "count"])
        lo, hi = spans["min"].max(), spans["max"].min()
        if lo > hi:
            raise DataValidationError(
                f"the symbols share no common date range ({spans['min'].idxmax()} starts {lo}, after "
                f"{spans['max'].idxmin()} ends {hi}); load symbols that overlap in time"
            )
        if (spans["min"] < lo).any() or (spans["max"] > hi).any():
            log.info(
                "trimming bars to the common range %s .. %s (%s starts last, %s ends first)",
                lo,
                hi,
                spans["min"].idxmax(),
                spans["max"].idxmin(),
            )
            frame = frame.loc[((frame["timestamp"] >= lo) & (frame["timestamp"] <= hi)).to_numpy()]
            frame = frame.reset_index(drop=True)
        times = pd.unique(frame["timestamp"])
        counts = frame.groupby("symbol", sort=True)["timestamp"].count()
        short = counts[counts < len(times)]
        if len(short):
            symbol = str(short.index[0])
            have = pd.DatetimeIndex(frame.loc[frame["symbol"] == symbol, "timestamp"])
            gap = pd.DatetimeIndex(times).difference(have)
            raise DataValidationError(
                f"{symbol} has no bar at {len(gap)} timestamp(s) where other symbols have one, first at {gap[0]} "
                f"(inside the common range {lo} .. {hi}); the envs need a bar for every symbol at every timestamp: "
                "drop the symbol, restrict start/end, or fill the gap forward when loading (never backward)"
            )
        return frame

    def _check_range(self) -> None:
        lo = self.first - self.history + 1
        close = self.close[lo : self.last + 1]
        bad = ~(np.isfinite(close) & (close > 0))
        if bad.any():
            t, n = np.argwhere(bad)[0]
            raise DataValidationError(
                f"{self.symbols[n]} has a missing or non-positive close at {pd.Timestamp(self.times[lo + t])}; "
                "the envs need positive closes on every bar"
            )
        feats = self.features[lo : self.last + 1]
        bad_f = ~np.isfinite(feats)
        if bad_f.any():
            t, f, n = np.argwhere(bad_f)[0]
            raise DataValidationError(
                f"feature {self.feature_names[f]!r} is {feats[t, f, n]} for {self.symbols[n]} at "
                f"{pd.Timestamp(self.times[lo + t])}, inside the bars episodes use; drop the feature or restrict start"
            )

    @property
    def n_times(self) -> int:
        """T, the number of timestamps (including the history before :attr:`first`)."""
        return len(self.times)

    @property
    def n_symbols(self) -> int:
        """N, the number of symbols."""
        return len(self.symbols)

    @property
    def n_features(self) -> int:
        """F, the number of feature columns."""
        return len(self.feature_names)

    def fill_prices(self, field: str, offset: int) -> FloatArray:
        """``[T, N]`` fill price of an action chosen after bar t: ``field[t + offset]`` (NaN past the end).

        Parameters
        ----------
        field:
            ``"open"`` or ``"close"``.
        offset:
            0 or 1.
        """
        source = self.open if field == "open" else self.close
        out = np.full_like(source, np.nan)
        out[: self.n_times - offset] = source[offset:]
        return out

    def timestamp(self, index: int) -> pd.Timestamp:
        """The UTC timestamp of bar ``index``."""
        return pd.Timestamp(self.times[index]).tz_localize("UTC")

    def index_of(self, when: str | pd.Timestamp | np.datetime64 | int) -> int:
        """Bar index of a timestamp (the first bar at or after it) or an integer index (returned as is)."""
        if isinstance(when, (int, np.integer)):
            return int(when)
        return int(np.searchsorted(self.times, _as_utc(when).tz_localize(None).to_datetime64()))

    def __repr__(self) -> str:
        return (
            f"Market({self.n_symbols} symbols, {self.n_times} bars, features={list(self.feature_names)}, "
            f"usable {self.timestamp(self.first).date()} .. {self.timestamp(self.last).date()})"
        )


def market_for(
    bars: pd.DataFrame | None,
    market: Market | None,
    features: Sequence[str],
    feature_params: Mapping[str, Any] | None,
    *,
    start: str | pd.Timestamp | None,
    end: str | pd.Timestamp | None,
    history: int,
    min_first: int,
) -> Market:
    """The market an env trades: a :meth:`Market.window` of a prebuilt ``market``, else a new one of ``bars``.

    Parameters
    ----------
    bars:
        Canonical bars; not read when ``market`` is given.
    market:
        A market built from the same bars with the same ``features`` and ``feature_params``, or None.
    features, feature_params, start, end, history, min_first:
        As for :class:`Market`.

    Raises
    ------
    EnvConfigError
        Neither bars nor a market, or a market built with other features or feature parameters.
    """
    if market is None:
        if bars is None:
            raise EnvConfigError("the env needs bars or a prebuilt market")
        return Market(
            bars, features, feature_params=feature_params, start=start, end=end, history=history, min_first=min_first
        )
    if not market.uses_features(features, feature_params):
        names, params = market.feature_request
        raise EnvConfigError(
            f"the market was built with features {list(names)} and parameters {dict(params)}, not "
            f"{list(features)} and {dict(feature_params or {})}; pass bars instead, or a market of these features"
        )
    return market.window(start, end, history=history, min_first=min_first)
