"""BCL causal intervention (Zhang, Gu, Yao, section 5.5): a cluster's neurons replaced, against its baselines.

For a cluster, its evaluation corpus is the evaluation-split sentences that contain one of its top-10
tokens (:mod:`core.bcl.sentences`); the loss is the model's cross-entropy (nats) on those top tokens
with the cluster's neurons replaced versus unablated, reported as a % increase. Masked LMs predict every
occurrence of a top token replaced by the mask token (masked-token loss); causal LMs predict them as the
next token (next-token loss at the positions whose target is a top token).

Replacement value (claims.md revision 2, the authors' code): at every layer and every token, the
cluster's neurons take the mean of that layer's residual neurons at that token, on the live hidden
state (after the replacements of earlier layers): ``hidden_states.mean(-1)`` written into the
cluster's indices (:func:`replace_resid`). Reading R3 (claims.md, "Readings") replaces with each
neuron's own collection mean instead.

Every condition of a cluster (unablated, cluster, 3 baselines x 5 seeds of :mod:`core.bcl.baselines`,
alternates R3 and R4) runs on the same sentences in one batched forward pass: each batch row carries
its own keep-mask (:func:`intervene`, with :class:`ClusterScore` its result). A causal LM's pass
stops at the last scored position of its sentences: by causal attention the later tokens cannot change
the scored logits.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from core.zoo import sites
from core.bcl.baselines import BASELINES, SEEDS, baseline_sets, random_position_kept
from core.bcl.sentences import cluster_sentences
from core.errors import check_name


@dataclass
class ClusterScore:
    """Causal-intervention result of one cluster (BCL section 5.5).

    Attributes
    ----------
    cluster : int
    size : int
        Neurons in the cluster.
    n_sentences, n_targets : int
        Sentences used and top-token predictions scored.
    base_loss : float
        Unablated CE on the targets, nats.
    cluster_pct : float
        % increase of the CE with the cluster's neurons replaced (revision 2: the live per-token mean
        of their layer).
    baselines : dict of str to list of float
        % increase under each baseline, one per seed.
    rows : list of int
        The sentences (indices into the evaluation pool).
    readings : dict
        Alternates computed on the same sentences: ``"R3"``: ``{"cluster_pct", "baselines"}`` with
        every neuron set to its own collection mean; ``"R4"``: ``{"baselines": {"random_position":
        [...]}}`` with the index-preserving ``random_position``.
    """

    cluster: int
    size: int
    n_sentences: int
    n_targets: int
    base_loss: float
    cluster_pct: float
    baselines: dict
    rows: list = field(default_factory=list)
    readings: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"cluster": self.cluster, "size": self.size, "n_sentences": self.n_sentences,
                "n_targets": self.n_targets, "base_loss": self.base_loss, "cluster_pct": self.cluster_pct,
                "baselines": self.baselines, "rows": list(self.rows), "readings": self.readings}


@contextmanager
def replace_resid(model, keep: torch.Tensor, *, live: torch.Tensor | None = None,
                  neuron_mean=None) -> Iterator[None]:
    """Replace residual neurons, one keep-mask per batch row (BCL section 5.5, revision 2).

    At residual layer ``l`` (where :mod:`core.zoo.sites` places it: the input of block ``l``, and the output
    of the last block), row
    ``b`` of the batch becomes ``x * k + (1 - k) * v`` with ``k = keep[b, l]`` and

    - ``live[b]`` True (the primary reading, the authors' code): ``v = x.mean(-1)``, the mean of
      the layer's residual neurons at that token, on the live hidden state, i.e. after the
      replacements of earlier layers and before this layer's own (``hidden_states.mean(-1)``
      written into the replaced indices);
    - ``live[b]`` False (reading R3): ``v = neuron_mean[l]``, each neuron's own collection mean.

    Parameters
    ----------
    model : transformers model of a family in :data:`core.zoo.sites.ARCHITECTURES`
    keep : tensor of shape (batch, n_layers, width)
        1 keeps a neuron, 0 replaces it. Layers whose mask is all ones get no hook.
    live : BoolTensor of shape (batch,), optional
        Default: every row live.
    neuron_mean : array-like of shape (n_layers, width), optional
        Needed when a row is not live.

    Notes
    -----
    Hooks exist only inside the ``with`` block and are removed on the way out, also on error.
    """
    keep = torch.as_tensor(keep, dtype=torch.float32)
    b, n_layers, width = keep.shape
    if n_layers != sites.n_layers(model, "resid") or width != sites.site_width(model, "resid"):
        raise ValueError(f"replace_resid: keep of shape {tuple(keep.shape)} does not match the model's "
                         f"{sites.n_layers(model, 'resid')} x {sites.site_width(model, 'resid')} residual "
                         f"neurons")
    live = torch.ones(b, dtype=torch.bool) if live is None else torch.as_tensor(live, dtype=torch.bool)
    if live.shape != (b,):
        raise ValueError(f"replace_resid: live must have shape ({b},), got {tuple(live.shape)}")
    if not bool(live.all()) and neuron_mean is None:
        raise ValueError("replace_resid: rows that are not live need neuron_mean")
    const = None if neuron_mean is None else torch.as_tensor(np.asarray(neuron_mean), dtype=torch.float32)
    if const is not None and tuple(const.shape) != (n_layers, width):
        raise ValueError(f"replace_resid: neuron_mean must have shape ({n_layers}, {width}), got "
                         f"{tuple(const.shape)}")

    def apply(x: torch.Tensor, layer: int) -> torch.Tensor:
        k = keep[:, layer, None, :].to(device=x.device, dtype=x.dtype)  # (b, 1, width)
        v = x.mean(-1, keepdim=True)                                     # (b, seq, 1)
        if const is not None and not bool(live.all()):
            v = torch.where(live.to(x.device)[:, None, None], v,
                            const[layer].to(device=x.device, dtype=x.dtype))
        return x * k + (1 - k) * v

    layers = [l for l in range(n_layers) if bool((keep[:, l] != 1).any())]
    # where the harness reads and writes residual neurons (core.zoo.sites): one definition for all
    with sites.resid_hooks(model, layers, lambda layer, x: apply(x, layer), edit=True):
        yield


@torch.inference_mode()
def intervene(model, *, kind: str, windows: torch.Tensor, cluster: np.ndarray, top_ids,
              mask_id: int | None = None, n_layers: int, width: int, rows=None,
              max_sentences: int | None = None, seeds=SEEDS, salt: tuple[int, ...] = (),
              batch_rows: int = 34, cluster_id: int = 0, readings=frozenset(),
              neuron_mean=None) -> ClusterScore | None:
    """Causal intervention on one cluster (BCL section 5.5) with its three baselines.

    Every condition (unablated; the cluster; 3 baselines x ``len(seeds)``; and the alternates asked
    for) runs on the same sentences in one batched pass, each batch row with its own keep-mask
    (:func:`replace_resid`). Replaced neurons take the live per-token mean of their layer (revision 2);
    reading R3 adds the cluster and every baseline with each neuron's own collection mean instead;
    reading R4 adds the index-preserving ``random_position``
    (:func:`core.bcl.baselines.random_position_kept`).

    Parameters
    ----------
    model : masked LM or causal LM (transformers) of a family in :data:`core.zoo.sites.ARCHITECTURES`
        Where the family's row names an output head (:func:`core.zoo.sites.split_head`), the head
        runs only at the scored positions; otherwise the whole model runs.
    kind : {"masked", "causal"}
    windows : LongTensor of shape (n, seq)
        Evaluation-split sentences.
    cluster : ndarray of int
        Flat residual-neuron indices (``layer * width + index``).
    top_ids : sequence of int
        The cluster's top tokens; every occurrence in the sentences is a target.
    mask_id : int
        The mask token (masked LMs).
    rows : sequence of int, optional
        The sentences to use (:func:`core.bcl.sentences.select_sentences`); default: the first
        ``max_sentences`` of the pool that hold a top token (:func:`core.bcl.sentences.cluster_sentences`).
    salt : tuple of int
        Extra seed material for the baselines (e.g. K and the cluster id).
    readings : frozenset of str
        Alternates to compute on the same sentences: ``"R3"`` (needs ``neuron_mean``), ``"R4"``.
    neuron_mean : array-like of shape (n_layers, width), optional
        Each neuron's mean over the collection split (R3).

    Returns
    -------
    ClusterScore, or None when no sentence holds a top token (the cluster is skipped).
    """
    check_name("model kind", kind, ("masked", "causal"))
    if kind == "masked" and mask_id is None:
        raise ValueError("a masked LM needs mask_id")
    bad = sorted(set(readings) - {"R3", "R4"})
    if bad:
        raise ValueError(f"intervene computes the readings R3 and R4, got {bad}")
    if "R3" in readings and neuron_mean is None:
        raise ValueError("reading R3 needs neuron_mean")
    if rows is None:
        rows, targets = cluster_sentences(windows, top_ids, kind=kind, max_sentences=max_sentences)
    else:
        rows = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        hit = torch.isin(windows[rows], torch.as_tensor(list(map(int, top_ids)), dtype=windows.dtype))
        if kind == "causal":
            hit[:, 0] = False
        keep_rows = hit.any(1)
        rows, targets = rows[keep_rows], hit[keep_rows]
    if rows.numel() == 0:
        return None
    ids = windows[rows]
    inputs = ids.masked_fill(targets, mask_id) if kind == "masked" else ids
    label_pos = targets
    cluster = np.asarray(cluster, dtype=np.int64)
    sets = baseline_sets(cluster, n_layers, width, seeds, salt)
    # (name, neurons, live)
    conditions = [("base", None, True), ("cluster", cluster, True)]
    conditions += [(b, s, True) for b in BASELINES for s in sets[b]]
    if "R3" in readings:
        conditions += [("R3 cluster", cluster, False)]
        conditions += [(f"R3 {b}", s, False) for b in BASELINES for s in sets[b]]
    if "R4" in readings:
        kept = [random_position_kept(cluster, n_layers, width,
                                     np.random.default_rng([int(s), *map(int, salt), 4])) for s in seeds]
        conditions += [("R4 random_position", s, True) for s in kept]
    keep = torch.ones((len(conditions), n_layers * width))
    for c, (_, neurons, _) in enumerate(conditions):
        if neurons is not None:
            keep[c, torch.as_tensor(neurons)] = 0.0
    keep = keep.view(len(conditions), n_layers, width)
    live = torch.tensor([lv for _, _, lv in conditions], dtype=torch.bool)
    m, seq = ids.shape
    if kind == "masked":
        # row r of the big batch: condition r // m, sentence r % m
        cond_of = torch.arange(len(conditions)).repeat_interleave(m)
        sent_of = torch.arange(m).repeat(len(conditions))
        scored, need = label_pos, torch.full((m,), seq)
    else:
        scored = torch.zeros_like(label_pos)
        scored[:, :-1] = label_pos[:, 1:]  # the logits at t predict the token at t + 1
        # causal attention: the logits up to a sentence's last scored position do not depend on the
        # tokens after it, so each batch runs only as far as its rows' last scored position; rows go
        # sentence by sentence, longest first, so that a batch's rows need about the same length
        need = torch.where(scored, torch.arange(seq), -1).max(1).values + 1
        order = torch.argsort(need, descending=True, stable=True)
        sent_of = order.repeat_interleave(len(conditions))
        cond_of = torch.arange(len(conditions)).repeat(m)
    ce_sum = torch.zeros(len(conditions), dtype=torch.float64)
    n_t = int(label_pos.sum())
    device = next(model.parameters()).device
    split = sites.split_head(model)  # None: the family's logits are not one module on the last hidden state
    for start in range(0, cond_of.numel(), batch_rows):
        c, s = cond_of[start:start + batch_rows], sent_of[start:start + batch_rows]
        length = int(need[s].max())
        pos = scored[s][:, :length].to(device)
        if kind == "masked":
            tgt = ids[s].to(device)[pos]
        else:
            tgt = ids[s][:, 1:length + 1].to(device)[pos]
        with replace_resid(model, keep[c], live=live[c], neuron_mean=neuron_mean):
            if split is None:
                lg = model(input_ids=inputs[s][:, :length].to(device)).logits[pos]
            else:
                body, head = split
                lg = head(body(input_ids=inputs[s][:, :length].to(device))[0][pos])  # the head only where scored
        row_of = torch.arange(s.numel(), device=device)[:, None].expand_as(pos)[pos]
        ce = torch.nn.functional.cross_entropy(lg.float(), tgt, reduction="none").double().cpu()
        ce_sum.index_add_(0, c[row_of.cpu()], ce)
    loss = ce_sum / n_t
    if not torch.isfinite(loss).all():
        raise FloatingPointError(f"non-finite loss in the intervention on cluster {cluster_id}")
    pct = (100.0 * (loss / loss[0] - 1.0)).tolist()
    names = [n for n, _, _ in conditions]

    def of(name: str) -> list[float]:
        return [p for n, p in zip(names, pct) if n == name]

    alt = {}
    if "R3" in readings:
        alt["R3"] = {"cluster_pct": of("R3 cluster")[0], "baselines": {b: of(f"R3 {b}") for b in BASELINES}}
    if "R4" in readings:
        alt["R4"] = {"baselines": {"random_position": of("R4 random_position")}}
    return ClusterScore(cluster=int(cluster_id), size=int(cluster.size), n_sentences=int(m), n_targets=n_t,
                        base_loss=float(loss[0]), cluster_pct=of("cluster")[0],
                        baselines={b: of(b) for b in BASELINES}, rows=[int(r) for r in rows],
                        readings=alt)

