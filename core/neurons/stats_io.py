"""Saving and loading :class:`core.neurons.stats.NeuronStats`: its whole state as CPU tensors
(:meth:`~NeuronStatsIO.state_dict`), rebuilt by :meth:`~NeuronStatsIO.from_state_dict`, and written to
or read from a ``.safetensors`` file (:meth:`~NeuronStatsIO.save`, :meth:`~NeuronStatsIO.load`).

:class:`NeuronStatsIO` is the base class of :class:`~core.neurons.stats.NeuronStats` that holds these
four methods; it reads and sets the statistics' buffers (``_count``, ``_mean``, ``_m2``,
``_mean_abs``, ``_min``, ``_max``, ``_hist``, ``_phase``) and is not used on its own; the return
annotations ``NeuronStats`` name that subclass (annotations are not evaluated, so this module does
not import :mod:`core.neurons.stats`, which imports it). The file format is tagged :data:`_FORMAT`
in the safetensors metadata.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from core.cache import atomic_path

__all__ = ["NeuronStatsIO"]

_STATE_KEYS = ("count", "mean", "m2", "mean_abs", "min", "max", "hist", "phase")
_FORMAT = "neuron-claims/NeuronStats/1"


class NeuronStatsIO:
    """The saving half of :class:`~core.neurons.stats.NeuronStats` (its base class): state dicts and
    ``.safetensors`` files of the streaming statistics. See :class:`~core.neurons.stats.NeuronStats`."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The whole state as CPU tensors, for ``safetensors`` or ``torch.save``.

        Returns
        -------
        dict of str to Tensor
            ``count`` (0-d int64), ``mean``, ``m2`` (sum of squared deviations), ``mean_abs``,
            ``min``, ``max`` (float64, shape (n_neurons,)), ``hist`` (int64, shape
            (n_neurons, n_bins), zeros before the second pass) and ``phase`` (0-d int64: 0 first
            pass, 1 second pass started).
        """
        self._raise_if_bad()
        hist = (self._hist.cpu() if self._hist is not None
                else torch.zeros(self.n_neurons, self.n_bins, dtype=torch.int64))
        return {
            "count": torch.tensor(self._count, dtype=torch.int64),
            "mean": self._mean.cpu().clone(),
            "m2": self._m2.cpu().clone(),
            "mean_abs": self._mean_abs.cpu().clone(),
            "min": self._min.cpu().clone(),
            "max": self._max.cpu().clone(),
            "hist": hist.clone(),
            "phase": torch.tensor(self._phase, dtype=torch.int64),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], *,
                        defer_finite_check: bool = False) -> NeuronStats:
        """Rebuild an object from :meth:`state_dict` (on the CPU).

        Raises
        ------
        ValueError
            If a key is missing or unknown, or the shapes disagree.
        """
        keys = set(state)
        if keys != set(_STATE_KEYS):
            raise ValueError(f"NeuronStats.from_state_dict: expected keys {sorted(_STATE_KEYS)}, got "
                             f"{sorted(keys)}")
        hist = state["hist"]
        if hist.ndim != 2:
            raise ValueError(f"NeuronStats.from_state_dict: expected 'hist' of shape (n_neurons, "
                             f"n_bins), got {tuple(hist.shape)}")
        n_neurons, n_bins = hist.shape
        for k in ("mean", "m2", "mean_abs", "min", "max"):
            if tuple(state[k].shape) != (n_neurons,):
                raise ValueError(f"NeuronStats.from_state_dict: expected {k!r} of shape "
                                 f"({n_neurons},), got {tuple(state[k].shape)}")
        for k in ("count", "phase"):
            if state[k].numel() != 1:
                raise ValueError(f"NeuronStats.from_state_dict: expected a scalar {k!r}, got shape "
                                 f"{tuple(state[k].shape)}")
        out = cls(n_neurons, n_bins=n_bins, defer_finite_check=defer_finite_check)
        out._count = int(state["count"])
        out._phase = int(state["phase"])
        if out._phase not in (0, 1) or out._count < 0:
            raise ValueError(f"NeuronStats.from_state_dict: expected phase in (0, 1) and count >= 0, "
                             f"got phase={out._phase}, count={out._count}")
        with torch.inference_mode(False):
            for k in ("mean", "m2", "mean_abs", "min", "max"):
                setattr(out, f"_{k}", state[k].detach().to("cpu", torch.float64).clone())
            if out._phase:
                out._hist = hist.detach().to("cpu", torch.int64).clone()
        if out._count:
            out._device = torch.device("cpu")
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`state_dict` to a ``.safetensors`` file, atomically. Returns the path."""
        from safetensors.torch import save_file

        path = Path(path)
        with atomic_path(path) as tmp:
            save_file(self.state_dict(), str(tmp), metadata={"format": _FORMAT})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, defer_finite_check: bool = False) -> NeuronStats:
        """Read a file written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the file does not hold a NeuronStats state.
        """
        from safetensors.torch import load_file

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"NeuronStats.load: no such file: {path}")
        return cls.from_state_dict(load_file(str(path)), defer_finite_check=defer_finite_check)
