"""Neuron representations of BCL (Zhang, Gu, Yao, section 5.1, Eq. 1), in one streaming pass.

``R[n, v]`` is the mean activation of residual neuron ``n`` over every occurrence of vocabulary token
``v`` in the collection corpus (BCL Eq. 1). Residual neurons are the dimensions of the hidden state
after the embedding layer and after every transformer block (site ``"resid"`` of :mod:`core.zoo.sites`:
``n_layers + 1`` layers of ``d_model`` neurons; BERT-base 13 x 768 = 9,984).

The pass never holds raw activations: the corpus's distinct token ids are first mapped to compact
rows (so memory scales with the distinct tokens of the corpus, not the vocabulary), and every forward
pass adds its activations into per-layer sums with ``index_add_`` (no Python loop over tokens).
Padding positions (``attention_mask == 0``, or ids listed in ``ignore_ids``) are excluded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from core.batching import Budget, items_per_batch, with_backoff
from core.zoo import sites
from core.cache import atomic_path

SITE = "resid"


@dataclass
class Representations:
    """Mean activation of every residual neuron for every token of a corpus (BCL Eq. 1).

    Attributes
    ----------
    token_ids : ndarray of shape (n_tokens,), int64
        Vocabulary ids of the columns, ascending: the distinct ids that occur in the corpus (outside
        padding).
    counts : ndarray of shape (n_tokens,), int64
        Occurrences of each token in the corpus (the denominator of Eq. 1).
    mean : ndarray of shape (n_layers * width, n_tokens), float32
        ``R[n, v]``; neuron ``n = layer * width + index`` (layer 0: the embedding output).
    neuron_mean : ndarray of shape (n_layers, width), float64
        Each neuron's mean activation over every counted position (all tokens pooled): the
        replacement value of reading R3 (claims.md, "Readings").
    n_layers, width : int
    n_positions : int
        Positions counted (padding excluded).
    info : dict
        Free-form provenance (model, data, sizes).
    """

    token_ids: np.ndarray
    counts: np.ndarray
    mean: np.ndarray
    neuron_mean: np.ndarray
    n_layers: int
    width: int
    n_positions: int
    info: dict = field(default_factory=dict)

    @property
    def n_neurons(self) -> int:
        return self.n_layers * self.width

    def layer_mean(self) -> np.ndarray:
        """Mean over all neurons and positions of each layer, shape (n_layers,), float64.

        Revision 1's reading of the value BCL section 5.5 sets replaced neurons to (one scalar per
        layer); revision 2 uses the live per-token mean of the layer instead
        (:func:`core.bcl.intervention.replace_resid`), and reading R3 uses :attr:`neuron_mean`.
        """
        return self.neuron_mean.mean(axis=1)

    def save(self, path: Path) -> None:
        """Save as ``.npz`` (atomically)."""
        import json

        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, token_ids=self.token_ids, counts=self.counts, mean=self.mean,
                         neuron_mean=self.neuron_mean,
                         meta=np.frombuffer(json.dumps({
                             "n_layers": self.n_layers, "width": self.width,
                             "n_positions": self.n_positions, "info": self.info}).encode(), dtype=np.uint8))

    @classmethod
    def load(cls, path: Path) -> Representations:
        import json

        with np.load(path) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            return cls(token_ids=z["token_ids"], counts=z["counts"], mean=z["mean"],
                       neuron_mean=z["neuron_mean"], n_layers=meta["n_layers"], width=meta["width"],
                       n_positions=meta["n_positions"], info=meta["info"])


def _valid_positions(input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                     ignore_ids) -> torch.Tensor:
    valid = torch.ones_like(input_ids, dtype=torch.bool)
    if attention_mask is not None:
        valid &= attention_mask.bool()
    if ignore_ids:
        valid &= ~torch.isin(input_ids, torch.as_tensor(sorted(set(ignore_ids)), dtype=input_ids.dtype))
    return valid


@torch.inference_mode()
def token_representations(
    model,
    input_ids: torch.Tensor,
    *,
    attention_mask: torch.Tensor | None = None,
    ignore_ids=(),
    batch_size: int | Budget = 8,
    progress: bool = False,
    desc: str = "representations",
) -> Representations:
    """Mean residual-neuron activation per token over a corpus (BCL Eq. 1), one streaming pass.

    Parameters
    ----------
    model : transformers model of a family in :data:`core.zoo.sites.ARCHITECTURES`
    input_ids : LongTensor of shape (n_windows, seq_len)
        The collection corpus (collection split only: it never overlaps the evaluation split).
    attention_mask : LongTensor of shape (n_windows, seq_len), optional
        0 marks padding, which is excluded from every mean.
    ignore_ids : iterable of int
        Token ids whose positions are excluded (e.g. the pad id when there is no attention mask).
    batch_size : int or core.batching.Budget
        Windows per forward pass, or a budget (:func:`core.batching.items_per_batch`); a batch that
        does not fit in memory is halved and the pass rerun (:func:`core.batching.with_backoff`).

    Notes
    -----
    Only the model's body (``model.base_model``) runs: the output head is not needed.

    Returns
    -------
    Representations
        ``mean[n, j]`` = sum of neuron ``n``'s activations at the positions holding token
        ``token_ids[j]``, divided by ``counts[j]``.

    Raises
    ------
    ValueError
        If ``input_ids`` is not 2-D, the mask's shape differs, or no position is left to count.
    """
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must have shape (n_windows, seq_len), got {tuple(input_ids.shape)}")
    if attention_mask is not None and attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, input_ids "
                         f"{tuple(input_ids.shape)}")
    valid_all = _valid_positions(input_ids, attention_mask, ignore_ids)
    if not bool(valid_all.any()):
        raise ValueError("no position left to count: every position is padding or ignored")
    token_ids, inverse = torch.unique(input_ids[valid_all], return_inverse=True)
    # compact rows: lookup table vocabulary id -> row (only the distinct ids of the corpus)
    lut = torch.full((int(input_ids.max()) + 1,), -1, dtype=torch.long)
    lut[token_ids] = torch.arange(token_ids.numel())
    n_rows = token_ids.numel()
    n_layers, width = sites.n_layers(model, SITE), sites.site_width(model, SITE)
    device = next(model.parameters()).device
    counts = torch.bincount(inverse, minlength=n_rows)
    n = input_ids.shape[0]
    body = getattr(model, "base_model", model)  # the residual stream only: no output head needed

    def run(bs: int):  # from nothing: a batch that does not fit is halved and the pass rerun
        sums = torch.zeros((n_layers, n_rows, width), dtype=torch.float32, device=device)
        totals = torch.zeros((n_layers, width), dtype=torch.float64, device=device)
        current: dict[str, torch.Tensor] = {}

        def add(layer: int, x: torch.Tensor) -> None:
            flat = x.reshape(-1, width)[current["keep"]].float()
            sums[layer].index_add_(0, current["rows"], flat)
            totals[layer] += flat.sum(0, dtype=torch.float64)

        with sites.trace(model, SITE, add):
            for start in tqdm(range(0, n, bs), desc=desc, disable=not progress, leave=False):
                ids = input_ids[start:start + bs]
                valid = valid_all[start:start + bs].reshape(-1)
                current["keep"] = valid.nonzero().squeeze(1).to(device)
                current["rows"] = lut[ids.reshape(-1)[valid]].to(device)
                kw = {"input_ids": ids.to(device)}
                if attention_mask is not None:
                    kw["attention_mask"] = attention_mask[start:start + bs].to(device)
                body(**kw)
        return sums, totals

    sums, totals = with_backoff(run, items_per_batch(batch_size, seq_len=input_ids.shape[1], n_items=n), what=desc,
                                owner=model)
    n_positions = int(counts.sum())
    mean = (sums / counts.to(sums)[None, :, None]).permute(0, 2, 1).reshape(n_layers * width, n_rows)
    return Representations(token_ids=token_ids.numpy().astype(np.int64),
                           counts=counts.numpy().astype(np.int64),
                           mean=mean.cpu().numpy().astype(np.float32),
                           neuron_mean=(totals / n_positions).cpu().numpy(),
                           n_layers=n_layers, width=width, n_positions=n_positions)
