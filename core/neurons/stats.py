"""Streaming per-neuron statistics: moments in a first pass, a per-neuron histogram in a second.

:class:`NeuronStats` sees a neuron site's activations batch by batch, as tensors of shape
``(n_samples, n_neurons)``, and never keeps them. The first pass (:meth:`NeuronStats.update`) gives
the count, mean, mean absolute value, population variance, min and max of every neuron; these give
the ``mean`` ablation offset and the per-neuron ranges. The second pass
(:meth:`NeuronStats.update_histogram`) fills, for every neuron, ``n_bins`` equal bins over that
neuron's own ``[min, max]`` from the first pass, and :attr:`NeuronStats.peak` is the centre of the
fullest bin: the ``peak`` ablation offset of ABL section 3.4 (the paper's code uses per-neuron
ranges and 100 bins; claims.md, "Ablation").

Numerics. Every batch is cut into row chunks of about ``2**21`` values on the CPU (so that the few
passes over a chunk run from cache) and reduced over dim 0 in the input's precision (float32 for
float16/bfloat16 inputs), relative to a per-neuron shift (the running mean, or the batch's first
row at the very start). The shifted sums of a batch are added in float64 and the batch is merged
into the running moments with the parallel (Chan et al.) update, also in float64, so that the mean
and variance stay accurate over millions of samples. Bin indices are computed as
``trunc((x - min) * n_bins / (max - min))`` in the input's precision, the same arithmetic as
``torch.histc`` on the CPU, so that counts match ``torch.histc`` with the same range exactly.

Saving and loading (:meth:`NeuronStats.state_dict`, :meth:`NeuronStats.from_state_dict`,
:meth:`NeuronStats.save`, :meth:`NeuronStats.load`) live in :mod:`core.neurons.stats_io`, the base
class :class:`~core.neurons.stats_io.NeuronStatsIO`.
"""
from __future__ import annotations

import torch

from core.neurons.stats_io import NeuronStatsIO

__all__ = ["NeuronStats"]

#: Values per row chunk on the CPU: the float32 work buffer is 8 MB, the int64 index buffer 16 MB.
_CPU_CHUNK_VALUES = 1 << 21
#: Values per row chunk on accelerators, where one chunk is usually the whole batch.
_DEVICE_CHUNK_VALUES = 1 << 26


class NeuronStats(NeuronStatsIO):
    """Streaming per-neuron moments, ranges and histograms of one neuron site.

    Two passes over the same data (the collection split): :meth:`update` for every batch, then
    :meth:`update_histogram` for every batch. The first :meth:`update_histogram` call freezes the
    per-neuron ranges ``[min, max]`` that the histogram bins divide; later :meth:`update` calls raise.
    Memory is O(n_neurons * n_bins) plus one chunk of work space per call; activations are never
    stored. Not thread-safe: give each worker its own object and :meth:`merge` them.

    Implements ABL section 3.4 (peak ablation): neuron ``i``'s activations are sorted into
    ``n_bins`` equal bins ``[y_k, y_k + eps)`` over its own range, ``eps = (max_i - min_i) / n_bins``
    (the last bin also holds ``max_i``), and the peak is ``y_kmax + eps / 2`` for the fullest bin
    ``kmax`` (the first one on ties). The paper's code uses per-neuron ranges and 100 bins.

    Parameters
    ----------
    n_neurons : int
        Width of the site (number of neurons), > 0.
    n_bins : int, default=100
        Histogram bins per neuron, > 0.
    defer_finite_check : bool, default=False
        If False, :meth:`update` and :meth:`update_histogram` raise ``FloatingPointError`` on the
        batch that holds NaN or infinite values; on CUDA this costs one host synchronisation per
        call. If True, no call synchronises: a bad batch sets a flag on the device and the error is
        raised by the next call that reads results (any property, :meth:`state_dict`,
        :meth:`merge`, :meth:`save`, the first :meth:`update_histogram`).

    Attributes
    ----------
    n_neurons, n_bins : int
    count : int
        Samples (rows) seen by the first pass.
    mean, mean_abs, var, std, min, max, peak : FloatTensor of shape (n_neurons,)
        float32, on the CPU (see each property). Activation units.
    histogram : LongTensor of shape (n_neurons, n_bins)
        int64, on the CPU.

    Raises
    ------
    ValueError
        If ``n_neurons`` or ``n_bins`` is not a positive int.

    Examples
    --------
    >>> s = NeuronStats(2, n_bins=4)
    >>> x = torch.tensor([[0.0, 1.0], [1.0, 1.0], [4.0, 1.0]])
    >>> _ = s.update(x)
    >>> _ = s.update_histogram(x)
    >>> s.histogram.tolist()
    [[1, 1, 0, 1], [3, 0, 0, 0]]
    >>> s.peak.tolist()
    [0.5, 1.0]
    """

    def __init__(self, n_neurons: int, *, n_bins: int = 100, defer_finite_check: bool = False):
        self.n_neurons = _positive_int("n_neurons", n_neurons)
        self.n_bins = _positive_int("n_bins", n_bins)
        self.defer_finite_check = bool(defer_finite_check)
        self._count = 0
        self._phase = 0  # 0: moments (first pass), 1: histogram (second pass, ranges frozen)
        self._device: torch.device | None = None
        f64 = dict(dtype=torch.float64)
        # Persistent buffers are always normal tensors, also when made under torch.inference_mode,
        # so that they can be updated in place on either side of it.
        with torch.inference_mode(False):
            self._mean = torch.zeros(self.n_neurons, **f64)
            self._m2 = torch.zeros(self.n_neurons, **f64)
            self._mean_abs = torch.zeros(self.n_neurons, **f64)
            self._min = torch.full((self.n_neurons,), float("inf"), **f64)
            self._max = torch.full((self.n_neurons,), float("-inf"), **f64)
        self._hist: torch.Tensor | None = None  # (n_neurons, n_bins) int64, made by the second pass
        self._bad: torch.Tensor | None = None  # deferred non-finite flag (0-d bool on the device)
        self._broken: str | None = None  # set when a second-pass call failed half-way

    def __repr__(self) -> str:
        phase = "histogram" if self._phase else "moments"
        return (f"NeuronStats(n_neurons={self.n_neurons}, n_bins={self.n_bins}, count={self._count}, "
                f"phase={phase!r})")

    # ------------------------------------------------------------------------------------------
    # the two passes

    def update(self, x: torch.Tensor) -> NeuronStats:
        """First pass: add a batch to the running moments and ranges.

        Parameters
        ----------
        x : Tensor of shape (n_samples, n_neurons)
            Any floating dtype, any device, any strides. Rows are samples (e.g. token positions).
            The buffers live on the device of the first batch; later batches on another device are
            copied there. ``n_samples`` may be 0.

        Returns
        -------
        self

        Raises
        ------
        TypeError
            If ``x`` is not a floating-point tensor.
        ValueError
            If ``x`` is not of shape (n_samples, n_neurons).
        RuntimeError
            If the second pass has started (the ranges are frozen).
        FloatingPointError
            If ``x`` holds NaN or infinite values, or its squares overflow (the statistics are left
            as they were before the call). With ``defer_finite_check=True``: raised later instead.
        """
        x = self._check_batch(x, "update")
        if self._phase:
            raise RuntimeError("NeuronStats.update called after update_histogram: the per-neuron "
                               "ranges are frozen once the second pass starts")
        n = x.shape[0]
        if n == 0:
            return self
        cdt = _compute_dtype(x)
        shift = (self._mean if self._count else x[0]).to(cdt)
        s1, s2, sabs, bmin, bmax = self._shifted_sums(x, shift, cdt)

        bad = ~(torch.isfinite(bmin).all() & torch.isfinite(bmax).all() & torch.isfinite(s2).all())
        if self.defer_finite_check:
            self._bad = bad if self._bad is None else self._bad | bad
        elif bool(bad):
            n_bad = int((~torch.isfinite(x)).sum())
            what = (f"{n_bad} non-finite value(s)" if n_bad
                    else "values whose squares overflow the input dtype")
            raise FloatingPointError(f"NeuronStats.update: batch of shape {tuple(x.shape)} holds {what}")

        bmean = shift.to(torch.float64) + s1 / n
        bm2 = (s2 - s1 * s1 / n).clamp_(min=0.0)
        self._merge_moments(n, bmean, bm2, sabs / n)
        torch.minimum(self._min, bmin.to(torch.float64), out=self._min)
        torch.maximum(self._max, bmax.to(torch.float64), out=self._max)
        return self

    def update_histogram(self, x: torch.Tensor) -> NeuronStats:
        """Second pass: count a batch into every neuron's histogram over its frozen range.

        Neuron ``i``'s value ``v`` goes into bin ``trunc((v - min_i) * n_bins / (max_i - min_i))``
        computed in the input's precision (float32 for float16/bfloat16), as ``torch.histc`` does;
        ``v == max_i`` goes into the last bin. Values outside ``[min_i, max_i]`` (data the first pass
        did not see) are counted in the nearest edge bin. A constant neuron (``max_i == min_i``)
        counts everything in bin 0. Vectorised: one ``scatter_add_`` per row chunk into a
        (n_neurons, n_bins) buffer, no Python loop over neurons or samples.

        Parameters
        ----------
        x : Tensor of shape (n_samples, n_neurons)
            Any floating dtype, any device, any strides.

        Returns
        -------
        self

        Raises
        ------
        TypeError
            If ``x`` is not a floating-point tensor.
        ValueError
            If ``x`` is not of shape (n_samples, n_neurons).
        RuntimeError
            If no sample has been seen by :meth:`update` yet.
        FloatingPointError
            If ``x`` holds NaN or infinite values (or values so far outside the frozen range that
            their bin index overflows the input dtype). The histogram may then hold part of the
            batch: every later read raises ``RuntimeError``; discard the object. With
            ``defer_finite_check=True``: raised later instead.
        """
        x = self._check_batch(x, "update_histogram")
        if self._count == 0:
            raise RuntimeError("NeuronStats.update_histogram called before any update: the first "
                               "pass (update) must see data to fix the per-neuron ranges")
        if not self._phase:
            self._raise_if_bad()  # the ranges must be sound before they are frozen
            self._phase = 1
        if self._hist is None:
            with torch.inference_mode(False):
                self._hist = torch.zeros(self.n_neurons, self.n_bins, dtype=torch.int64,
                                         device=self._device)
        n = x.shape[0]
        if n == 0:
            return self
        cdt = _compute_dtype(x)
        lo = self._min.to(cdt)
        width = self._max.to(cdt) - lo
        width = torch.where(width > 0, width, torch.ones_like(width))  # constant neurons: bin 0
        rows = self._chunk_rows(x)
        work = torch.empty(min(rows, n), self.n_neurons, dtype=cdt, device=x.device)
        index = torch.empty(self.n_neurons, min(rows, n), dtype=torch.int64, device=x.device)
        one = torch.ones((), dtype=torch.int64, device=x.device)
        checksum = torch.zeros((), dtype=torch.float64, device=x.device)
        nb = self.n_bins
        for start in range(0, n, rows):
            chunk = x[start:start + rows]
            r = chunk.shape[0]
            w = work[:r]
            torch.sub(chunk, lo, out=w)
            w.mul_(nb).div_(width)
            checksum += w.sum()  # NaN or inf anywhere in the chunk makes this non-finite
            w.clamp_(0, nb - 1)
            idx = index[:, :r]
            idx.copy_(w.t())  # truncation towards zero == floor, as w >= 0
            idx.clamp_(0, nb - 1)  # NaN converts to an arbitrary integer: keep it in range
            self._hist.scatter_add_(1, idx, one.expand(self.n_neurons, r))
        bad = ~torch.isfinite(checksum)
        if self.defer_finite_check:
            self._bad = bad if self._bad is None else self._bad | bad
        elif bool(bad):
            self._broken = "an update_histogram call received non-finite values"
            n_bad = int((~torch.isfinite(x)).sum())
            what = (f"{n_bad} non-finite value(s)" if n_bad
                    else "values so far outside the first pass's range that their bins overflow")
            raise FloatingPointError(f"NeuronStats.update_histogram: batch of shape "
                                     f"{tuple(x.shape)} holds {what}")
        return self

    # ------------------------------------------------------------------------------------------
    # results

    @property
    def count(self) -> int:
        """Samples seen by the first pass (int)."""
        self._raise_if_bad()
        return self._count

    @property
    def mean(self) -> torch.Tensor:
        """Mean activation, FloatTensor of shape (n_neurons,): the ``mean`` ablation offset."""
        return self._result(self._mean)

    @property
    def mean_abs(self) -> torch.Tensor:
        """Mean absolute activation ``mean(|x|)``, FloatTensor of shape (n_neurons,) (MOD Eq. 1)."""
        return self._result(self._mean_abs)

    @property
    def var(self) -> torch.Tensor:
        """Population variance (ddof=0: sum of squared deviations / count), FloatTensor (n_neurons,)."""
        return (self._result(self._m2, torch.float64) / self._count).to(torch.float32)

    @property
    def std(self) -> torch.Tensor:
        """Population standard deviation ``sqrt(var)`` (ddof=0), FloatTensor of shape (n_neurons,)."""
        return (self._result(self._m2, torch.float64) / self._count).sqrt().to(torch.float32)

    @property
    def min(self) -> torch.Tensor:
        """Smallest activation seen by the first pass, FloatTensor of shape (n_neurons,)."""
        return self._result(self._min)

    @property
    def max(self) -> torch.Tensor:
        """Largest activation seen by the first pass, FloatTensor of shape (n_neurons,)."""
        return self._result(self._max)

    @property
    def histogram(self) -> torch.Tensor:
        """Counts of the second pass, LongTensor of shape (n_neurons, n_bins), on the CPU.

        Row ``i`` divides ``[min_i, max_i]`` into ``n_bins`` equal bins (see :meth:`bin_edges`).

        Raises
        ------
        RuntimeError
            If the second pass has not started.
        """
        self._raise_if_bad()
        if self._hist is None:
            raise RuntimeError("NeuronStats.histogram: no update_histogram call yet")
        return self._hist.cpu()

    @property
    def peak(self) -> torch.Tensor:
        """Centre of each neuron's fullest bin: ``min + (argmax + 0.5) * (max - min) / n_bins``.

        The ``peak`` ablation offset (ABL section 3.4). The first bin wins ties; a constant neuron's
        peak is its value. FloatTensor of shape (n_neurons,), computed in float64, on the CPU.

        Raises
        ------
        RuntimeError
            If the second pass has not started.
        """
        hist = self.histogram
        lo, hi = self._min.cpu(), self._max.cpu()
        k = hist.argmax(dim=1).to(torch.float64)
        return (lo + (k + 0.5) * (hi - lo) / self.n_bins).to(torch.float32)

    def bin_edges(self) -> torch.Tensor:
        """Bin edges of every neuron, DoubleTensor of shape (n_neurons, n_bins + 1), on the CPU.

        ``edges[i, k] = min_i + k * (max_i - min_i) / n_bins``. Raises ``RuntimeError`` before any
        :meth:`update`.
        """
        lo, hi = self._result(self._min, torch.float64), self._result(self._max, torch.float64)
        k = torch.arange(self.n_bins + 1, dtype=torch.float64)
        return lo[:, None] + k[None, :] * ((hi - lo) / self.n_bins)[:, None]

    # ------------------------------------------------------------------------------------------
    # combining (saving and loading: core.neurons.stats_io)

    def merge(self, other: NeuronStats, *, histogram_only: bool = False) -> NeuronStats:
        """Add another object's statistics into this one (in place), e.g. from another worker.

        With ``histogram_only=False`` the two objects must have seen disjoint data: their moments
        are merged (Chan et al. parallel update, float64) and their ranges joined. If both have
        started the second pass, their frozen ranges must be identical and the histograms are added.

        With ``histogram_only=True`` only the histograms are added; the ranges must be identical.
        This is the two-pass protocol for workers: merge the first passes, hand the merged state to
        every worker (:meth:`from_state_dict`), let each run :meth:`update_histogram` on its shard,
        then merge the workers with ``histogram_only=True``.

        Parameters
        ----------
        other : NeuronStats
            Same ``n_neurons`` and ``n_bins``. Not modified.
        histogram_only : bool, default=False

        Returns
        -------
        self

        Raises
        ------
        TypeError
            If ``other`` is not a NeuronStats.
        ValueError
            If the shapes differ, only one of the two has started the second pass, or the ranges
            differ where they must be identical.
        """
        if not isinstance(other, NeuronStats):
            raise TypeError(f"NeuronStats.merge: expected a NeuronStats, got {type(other).__name__}")
        if (other.n_neurons, other.n_bins) != (self.n_neurons, self.n_bins):
            raise ValueError(f"NeuronStats.merge: expected n_neurons={self.n_neurons}, "
                             f"n_bins={self.n_bins}; got n_neurons={other.n_neurons}, "
                             f"n_bins={other.n_bins}")
        self._raise_if_bad()
        other._raise_if_bad()
        if other._device is not None and self._device is None:
            self._to(other._device)
        dev = self._device or torch.device("cpu")
        if histogram_only or (self._phase and other._phase):
            if not (self._phase and other._phase):
                raise ValueError("NeuronStats.merge: both objects must have started the second "
                                 "pass (update_histogram) to merge histograms")
            if not (torch.equal(self._min, other._min.to(dev))
                    and torch.equal(self._max, other._max.to(dev))):
                raise ValueError("NeuronStats.merge: histograms over different per-neuron ranges "
                                 "cannot be added; give every worker the same merged first pass")
            self._hist += other._hist.to(dev)
            if histogram_only:
                return self
        elif self._phase or other._phase:
            raise ValueError("NeuronStats.merge: one object has started the second pass and the "
                             "other has not; merge the first passes before any update_histogram")
        if other._count:
            self._merge_moments(other._count, other._mean.to(dev), other._m2.to(dev),
                                other._mean_abs.to(dev))
            torch.minimum(self._min, other._min.to(dev), out=self._min)
            torch.maximum(self._max, other._max.to(dev), out=self._max)
        return self

    # ------------------------------------------------------------------------------------------
    # internals

    def _check_batch(self, x, where: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"NeuronStats.{where}: expected a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"NeuronStats.{where}: expected a floating-point tensor, got {x.dtype}")
        if x.ndim != 2 or x.shape[1] != self.n_neurons:
            raise ValueError(f"NeuronStats.{where}: expected shape (n_samples, {self.n_neurons}), "
                             f"got {tuple(x.shape)}")
        if self._broken:
            raise RuntimeError(f"NeuronStats.{where}: {self._broken}; discard this object")
        x = x.detach()
        if self._device is None:
            self._to(x.device)
        elif x.device != self._device:
            x = x.to(self._device)
        return x

    def _to(self, device: torch.device) -> None:
        self._device = torch.device(device)
        with torch.inference_mode(False):
            for k in ("_mean", "_m2", "_mean_abs", "_min", "_max", "_hist", "_bad"):
                t = getattr(self, k)
                if t is not None:
                    setattr(self, k, t.to(self._device))

    def _chunk_rows(self, x: torch.Tensor) -> int:
        budget = _CPU_CHUNK_VALUES if x.device.type == "cpu" else _DEVICE_CHUNK_VALUES
        return max(1, budget // self.n_neurons)

    def _shifted_sums(self, x: torch.Tensor, shift: torch.Tensor, cdt: torch.dtype):
        """Per-neuron sums of ``x - shift``, of its square and of ``|x|`` (float64), min and max."""
        n = x.shape[0]
        rows = self._chunk_rows(x)
        m = min(rows, n)
        work = torch.empty(m, self.n_neurons, dtype=cdt, device=x.device)
        convert = (torch.empty(m, self.n_neurons, dtype=cdt, device=x.device)
                   if x.dtype != cdt else None)
        s1 = torch.zeros(self.n_neurons, dtype=torch.float64, device=x.device)
        s2 = torch.zeros_like(s1)
        sabs = torch.zeros_like(s1)
        bmin = bmax = None
        for start in range(0, n, rows):
            chunk = x[start:start + rows]
            r = chunk.shape[0]
            if convert is not None:
                chunk = convert[:r].copy_(chunk)
            cmin, cmax = chunk.amin(0), chunk.amax(0)
            bmin = cmin if bmin is None else torch.minimum(bmin, cmin)
            bmax = cmax if bmax is None else torch.maximum(bmax, cmax)
            w = work[:r]
            sabs += torch.abs(chunk, out=w).sum(0)
            s1 += torch.sub(chunk, shift, out=w).sum(0)
            s2 += w.square_().sum(0)
        return s1, s2, sabs, bmin, bmax

    def _merge_moments(self, n: int, mean: torch.Tensor, m2: torch.Tensor,
                       mean_abs: torch.Tensor) -> None:
        """Chan et al. parallel update of (count, mean, M2, mean|x|) with a block of ``n`` samples."""
        total = self._count + n
        delta = mean - self._mean
        self._m2 += m2 + delta * delta * (self._count * n / total)
        self._mean += delta * (n / total)
        self._mean_abs += (mean_abs - self._mean_abs) * (n / total)
        self._count = total

    def _raise_if_bad(self) -> None:
        if self._broken:
            raise RuntimeError(f"NeuronStats: {self._broken}; discard this object")
        if self._bad is not None and bool(self._bad):
            self._broken = "a batch held NaN or infinite values (found by the deferred check)"
            raise FloatingPointError(f"NeuronStats: {self._broken}")

    def _result(self, t: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        self._raise_if_bad()
        if self._count == 0:
            raise RuntimeError("NeuronStats: no samples seen yet (call update first)")
        return t.to("cpu", dtype)


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"NeuronStats: expected {name} to be a positive int, got {value!r}")
    return value
