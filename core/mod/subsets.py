"""The data of the modularity experiment (MOD section 2.2): the subsets pruned per tier and profile, the
sample sizes, and the evaluation and collection sets built from them.

- the MOD sample sizes are :attr:`core.profiles.Profile.mod` (:class:`core.profiles.ModSizes`);
  :data:`CI_TEXT_SUBSETS` (from :mod:`core.profiles`), :data:`FULL_TEXT_SUBSETS`,
  :data:`FULL_CI_TEXT_SUBSETS`, :data:`MOD_IMAGE_DATA`: the subsets and image data per tier;
- :func:`subsets_for`: (subsets pruned and evaluated, reference subsets) of a model kind, tier and profile;
- :func:`eval_set`, :func:`eval_seq_len`: the evaluation set of one MOD text subset and its window;
- :class:`ModData`: the inputs of the experiment for one model (two disjoint collection samples A and B
  of every reference subset, the concatenated evaluation sets, their documents), built from text or
  images by ``text_data`` and ``image_data``;
- :func:`eval_halves`: every subset's evaluation units split by document into two halves (MOD-3's
  noise floor).

Inputs: the tier's data (:mod:`core.data`); the experiment that reads a :class:`ModData` is
:mod:`core.mod.experiment`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from core.errors import check_name
from core.data.images import CIFAR20_CLASSES, FASHION_MNIST_CLASSES, image_split
from core.data.small import TEXT_SUBSETS
from core.data.windows import text_windows
from core.evaluate import EvalSet
from core.profiles import CI_TEXT_SUBSETS, ModSizes, Profile, get_profile

__all__ = ["ModData", "CI_TEXT_SUBSETS", "collect_tokens_for", "subsets_for", "eval_halves", "eval_set",
           "eval_seq_len"]

def collect_tokens_for(sizes: ModSizes, subset: str) -> int:
    """Collection tokens per sample (A or B) of one subset: ``sizes.collect_tokens``, or the size of the
    first prefix of ``sizes.collect_tokens_by_family`` that the subset's name starts with.

    ``collect_tokens_by_family`` is for the subsets of a family whose collection split cannot hold
    ``2 x collect_tokens``. The paper profile's MMLU groups (``mmlu:``) collect 3,000 tokens per sample, 6
    windows of 1,000 in all: MMLU's questions are short and few (412 test questions in the
    computer-science group), and even with each subject's validation and dev questions
    (``core.data.hub.hub_text_source``) the collection split of the smallest groups holds about 8,000 to
    9,000 tokens, not the 17 windows of 1,000 that 8,192 per sample takes (measured on the test questions
    alone, packed as ``text_windows`` packs them, with Mistral-7B's tokenizer, mistral-common's
    ``tokenizer.model.v1``: mmlu:cs 7,371, mmlu:physics 8,261, mmlu:bio 9,622; with SmolLM2's: 7,083,
    7,704, 8,395; 6 windows take 5,994 with Mistral's one special token). D_r weighs every subset equally
    whatever its sample size (the mean of the per-subset statistics), so the reference stays balanced;
    the result's sizes record both sample sizes.
    """
    for prefix, n_tokens in sizes.collect_tokens_by_family:
        if subset.startswith(prefix):
            return int(n_tokens)
    return int(sizes.collect_tokens)

#: The full tier's text subsets (MOD section 2.2; names of ``core.data.hub.HUB_TEXT_SUBSETS``): every Pile
#: subset of monology/pile-uncopyrighted, the CAMEL biology/physics/chemistry problems, GitHub code, and
#: MMLU as the six subject groups of offline-assets.md (single MMLU subjects hold too few test questions
#: for the collection samples; ``mod_experiment(subsets=...)`` accepts ``mmlu:<subject>`` names too).
FULL_TEXT_SUBSETS: tuple[str, ...] = (
    *(f"pile:{s}" for s in (
        "Pile-CC", "PubMed Central", "ArXiv", "Github", "FreeLaw", "StackExchange", "USPTO Backgrounds",
        "PubMed Abstracts", "Gutenberg (PG-19)", "Wikipedia (en)", "DM Mathematics", "Ubuntu IRC", "EuroParl",
        "HackerNews", "PhilPapers", "NIH ExPorter", "Enron Emails")),
    "camel-ai/biology", "camel-ai/physics", "camel-ai/chemistry", "codeparrot/github-code-clean",
    "mmlu:bio", "mmlu:med", "mmlu:law", "mmlu:cs", "mmlu:math", "mmlu:physics",
)
#: Full-tier subsets pruned by the ci and small profiles: those of the a-priori related Pile pairs
#: (offline-assets.md), as ``CI_TEXT_SUBSETS`` for the small tier.
FULL_CI_TEXT_SUBSETS: tuple[str, ...] = ("pile:PubMed Abstracts", "pile:PubMed Central", "pile:NIH ExPorter",
                                         "pile:Ubuntu IRC", "pile:HackerNews")
#: Image data of the MOD experiment per tier.
MOD_IMAGE_DATA = {"small": "fashion-mnist", "full": "uoft-cs/cifar100"}


def subsets_for(kind: str, tier: str, profile: Profile | str) -> tuple[list[str], list[str]]:
    """(subsets pruned and evaluated, reference subsets) of a model kind, tier and profile (a
    :class:`core.profiles.Profile` or the name of one).

    Small tier: the Fashion-MNIST classes, or ``core.data.small.TEXT_SUBSETS`` (the profile's
    ``profile.mod.text_subsets`` pruned). Full tier: the 20 CIFAR-20 superclasses
    (``core.data.images.CIFAR20_CLASSES``), or ``FULL_TEXT_SUBSETS`` (all of them for the paper profile,
    ``FULL_CI_TEXT_SUBSETS`` for the others). Names only: a missing Hub dataset raises
    MissingAssetError when the data is read.

    Raises
    ------
    UnknownNameError
        For an unknown profile name (the message lists the valid ones).
    ValueError
        For a profile without MOD sizes (:meth:`core.profiles.Profile.sizes_of`).
    """
    if isinstance(profile, str):
        profile = get_profile(profile)
    if tier == "full":
        if kind == "image":
            return list(CIFAR20_CLASSES), list(CIFAR20_CLASSES)
        reference = list(FULL_TEXT_SUBSETS)
        sizes = profile.sizes_of("mod")
        return list(reference if sizes.text_subsets is None else FULL_CI_TEXT_SUBSETS), reference
    if kind == "image":
        classes = list(FASHION_MNIST_CLASSES)
        return classes, classes
    sizes = profile.sizes_of("mod")
    reference = list(TEXT_SUBSETS)
    chosen = list(sizes.text_subsets or reference)
    for s in chosen:
        check_name("text subset", s, reference)
    return chosen, reference


def check_subset(name: str, subset: str, valid: Sequence[str]) -> str:
    """``subset`` if the model's data family has it, else ``UnknownNameError`` listing the valid ones."""
    return check_name(f"subset of {name}'s data family", subset, valid)


def eval_set(tokenizer, subset: str, sizes: ModSizes, seq_len: int) -> EvalSet:
    """The evaluation set of one MOD text subset: ``sizes.eval_tokens`` tokens of its eval split in
    windows of ``seq_len`` tokens, at most ``sizes.eval_doc_windows`` per document (None: no limit),
    with their documents (:func:`core.data.windows.text_windows`).

    Returns
    -------
    EvalSet
        Causal, ``inputs`` and ``docs`` LongTensors of shape (n_windows, seq_len).
    """

    windows, docs = text_windows(subset, tokenizer, split="eval", n_tokens=sizes.eval_tokens, seq_len=seq_len,
                                   doc_windows=sizes.eval_doc_windows, with_docs=True)
    return EvalSet("causal", windows, docs=docs, name=f"{subset}, eval split")


def eval_seq_len(sizes: ModSizes, profile, max_length: int | None) -> int:
    """Evaluation window of the MOD text subsets: ``sizes.eval_seq_len`` (None: the profile's
    ``seq_len``), capped by the model's ``max_length``."""
    length = sizes.eval_seq_len or profile.seq_len
    return min(length, max_length or length)


@dataclass
class ModData:
    """Inputs of the MOD experiment for one model.

    Attributes
    ----------
    kind : {"causal", "image"}
    subsets : list of str
        The subsets pruned and evaluated (D_u), in order.
    reference : list of str
        Every subset of the family: D_r is their balanced union (equal collection size each).
    collect : {sample: {subset: EvalSet}}
        Two disjoint collection samples "A" and "B" of every reference subset.
    evalset : EvalSet
        The evaluation split of every subset of ``subsets``, concatenated in order; text sets carry
        ``docs`` (each subset's own document ids).
    unit_subset : ndarray of shape (evalset.n_units,), int
        Index into ``subsets`` of every evaluation unit.
    sizes : dict
    described : dict
    unit_docs : ndarray of shape (evalset.n_units,), int64, or None
        Document of every evaluation unit, numbered across subsets (two subsets never share an id):
        from ``evalset.unit_docs()`` and ``unit_subset`` unless given; images are their own documents;
        None for a text set without ``docs``.

    Raises
    ------
    ValueError
        When ``unit_subset`` or ``unit_docs`` does not have one entry per evaluation unit (the message
        names both shapes).
    """

    kind: str
    subsets: list
    reference: list
    collect: dict
    evalset: EvalSet
    unit_subset: np.ndarray
    sizes: dict = field(default_factory=dict)
    described: dict = field(default_factory=dict)
    unit_docs: np.ndarray | None = None

    def __post_init__(self):
        n_units = self.evalset.n_units
        self.unit_subset = np.asarray(self.unit_subset)
        if self.unit_subset.shape != (n_units,):
            raise ValueError(f"MOD data: unit_subset has shape {self.unit_subset.shape}, but the evaluation set "
                             f"has {n_units} units (shape ({n_units},) expected)")
        if self.unit_docs is None and self.evalset.has_docs:
            pairs = np.stack([self.unit_subset.astype(np.int64), self.evalset.unit_docs()])
            self.unit_docs = np.unique(pairs, axis=1, return_inverse=True)[1].reshape(-1).astype(np.int64)
        elif self.unit_docs is not None:
            self.unit_docs = np.asarray(self.unit_docs, dtype=np.int64)
            if self.unit_docs.shape != (n_units,):
                raise ValueError(f"MOD data: unit_docs has shape {self.unit_docs.shape}, but the evaluation set "
                                 f"has {n_units} units (shape ({n_units},) expected)")

    def counts(self) -> dict:
        """Scored units and documents of the evaluation (claims.md: every result records them).

        Returns
        -------
        dict of str to int
            ``eval_units`` (scored tokens or images, all subsets), ``draws`` (1: the selections are
            deterministic, no random draw is pooled) and, where the documents are known,
            ``eval_documents`` (distinct documents, all subsets) and ``eval_documents_min_per_subset``
            (the fewest distinct documents among one subset's scored units; images are their own).
            Numbers only, so that claims can put them in ``sample_sizes``.
        """
        out = {"eval_units": int(self.unit_subset.size), "draws": 1}
        if self.unit_docs is not None:
            per_subset = self.per_subset()["eval_documents"]
            out["eval_documents"] = int(np.unique(self.unit_docs).size)
            out["eval_documents_min_per_subset"] = min(per_subset.values()) if per_subset else 0
        return out

    def per_subset(self) -> dict:
        """``{"eval_units": {subset: int}, "eval_documents": {subset: int}}`` (documents only where known)."""
        n = len(self.subsets)
        units = np.bincount(self.unit_subset, minlength=n)
        out = {"eval_units": dict(zip(self.subsets, map(int, units)))}
        if self.unit_docs is not None:
            out["eval_documents"] = {s: int(np.unique(self.unit_docs[self.unit_subset == i]).size)
                                     for i, s in enumerate(self.subsets)}
        return out


def sub_evalset(data: ModData, i: int) -> EvalSet:
    """The evaluation items of subset ``i`` only (contiguous in the concatenation)."""
    per_item = data.evalset.n_units // data.evalset.inputs.shape[0] if data.kind == "causal" else 1
    items = np.flatnonzero(data.unit_subset[::per_item] == i)
    sl = slice(int(items[0]), int(items[-1]) + 1)
    labels = None if data.evalset.labels is None else data.evalset.labels[sl]
    docs = None if data.evalset.docs is None else data.evalset.docs[sl]
    return EvalSet(data.kind, data.evalset.inputs[sl], labels, docs, data.subsets[i])


def _unit_docs(data: ModData) -> tuple[np.ndarray, str]:
    """(group id of every evaluation unit, what the groups are) for splitting by document.

    The source document of every unit where :class:`ModData` carries one (the data layer's document
    ids, attribute ``unit_docs``, added on branch ``docs``); else images are their own documents and
    text units are grouped by their window (a window holds one document unless its subset is packed).
    """
    docs = getattr(data, "unit_docs", None)
    n = data.evalset.n_units
    if data.kind == "image":
        return np.arange(n, dtype=np.int64), "images"
    if docs is not None:
        docs = np.asarray(docs)
        if docs.shape != (n,):
            raise ValueError(f"MOD evaluation: expected document ids of shape ({n},) matching the "
                             f"evaluation units, got shape {docs.shape}")
        return docs.astype(np.int64), "documents"
    if data.kind == "image":
        return np.arange(n, dtype=np.int64), "images"
    per_item = n // data.evalset.inputs.shape[0]
    return np.arange(n, dtype=np.int64) // per_item, "windows (document ids not available)"


def eval_halves(data: ModData) -> tuple[np.ndarray, dict]:
    """Split every subset's evaluation units by document into two halves (MOD-3's noise floor,
    claims.md revision 2: two R from disjoint collection samples *and* disjoint evaluation samples).

    Per subset, its documents in order of first appearance go to half 0 while the midpoint of the
    document lies in the first half of the subset's units, then to half 1; all units of a document
    stay in one half.

    Returns
    -------
    half : ndarray of shape (n_units,), int64 in {0, 1}
    info : dict
        ``{"groups": what was split ("documents", "images" or windows), "groups_per_subset": [...],
        "units_per_half": [[n0, n1], ...]}``.

    Raises
    ------
    ValueError
        When a subset's units come from fewer than 2 documents (the message names the subset).
    """
    docs, what = _unit_docs(data)
    half = np.zeros(data.evalset.n_units, dtype=np.int64)
    n_groups, per_half = [], []
    for i, subset in enumerate(data.subsets):
        idx = np.flatnonzero(data.unit_subset == i)
        uniq, first, counts = np.unique(docs[idx], return_index=True, return_counts=True)
        if len(uniq) < 2:
            raise ValueError(f"MOD evaluation halves: subset {subset} has its {len(idx)} evaluation units from "
                             f"{len(uniq)} {what.split()[0]}; two disjoint halves need at least 2")
        order = np.argsort(first, kind="stable")
        uniq, counts = uniq[order], counts[order]
        mid = np.cumsum(counts) - counts / 2.0
        second = set(uniq[mid >= counts.sum() / 2.0].tolist())
        if len(second) in (0, len(uniq)):  # one very long document: still two non-empty halves
            second = {uniq[-1]} if not second else set(uniq[1:].tolist())
        half[idx] = np.isin(docs[idx], list(second)).astype(np.int64)
        n_groups.append(int(len(uniq)))
        per_half.append([int((half[idx] == 0).sum()), int((half[idx] == 1).sum())])
    return half, {"groups": what, "groups_per_subset": n_groups, "units_per_half": per_half}


def text_data(lm, profile, subsets, reference, sizes: ModSizes) -> ModData:

    seq_len = min(profile.seq_len, lm.max_length or profile.seq_len)
    eval_len = eval_seq_len(sizes, profile, lm.max_length)
    collect = {"A": {}, "B": {}}
    for s in reference:
        w = text_windows(s, lm.tokenizer, split="collect", n_tokens=2 * collect_tokens_for(sizes, s),
                         seq_len=seq_len)
        half = w.shape[0] // 2
        collect["A"][s] = EvalSet("causal", w[:half])
        collect["B"][s] = EvalSet("causal", w[half:])
    per_sample = {s: collect["A"][s].inputs.shape[0] * seq_len for s in reference}
    evals = [eval_set(lm.tokenizer, s, sizes, eval_len) for s in subsets]
    check = getattr(profile, "check_documents", None)
    for s, e in zip(subsets, evals):
        if check is not None:
            check(e.n_documents(), f"MOD evaluation set of subset {s!r} (eval split)")
    evalset = EvalSet("causal", torch.cat([e.inputs for e in evals]), docs=torch.cat([e.docs for e in evals]),
                      name="MOD subsets, eval split")
    unit_subset = np.repeat(np.arange(len(subsets)), [e.n_units for e in evals])
    half = collect["A"][reference[0]].inputs.shape[0]
    doc_windows = sizes.eval_doc_windows
    return ModData("causal", list(subsets), list(reference), collect, evalset, unit_subset,
                   sizes={"collect_tokens_per_subset_per_sample": half * seq_len,
                          **({"collect_tokens_per_subset_per_sample (min)": min(per_sample.values())}
                             if min(per_sample.values()) != half * seq_len else {}),
                          "eval_tokens_per_subset": evals[0].inputs.numel(), "seq_len": seq_len,
                          "eval_seq_len": eval_len, **({"eval_doc_windows": doc_windows} if doc_windows else {}),
                          "n_subsets": len(subsets), "n_reference_subsets": len(reference)},
                   described={"subsets": ("small-tier text subsets (offline-assets.md)" if lm.tier == "small" else
                                          "full-tier Hub text subsets (core.data.HUB_TEXT_SUBSETS_DOC; Pile subsets "
                                          "from train shards 00-01, MMLU groups from each subject's test, "
                                          "validation and dev questions, README 'Preparing the full tier')")
                                         + ", collect split: two disjoint samples A and B; eval split for every top1"
                                         + f" in windows of {eval_len} tokens"
                                         + (f", at most {doc_windows} per document" if doc_windows else ""),
                              "reference": "balanced union of every text subset"
                                           + "".join(f"; {prefix}* subsets collect {n:,} tokens per sample"
                                                     for prefix, n in sizes.collect_tokens_by_family
                                                     if any(s.startswith(prefix) for s in reference))})


def image_data(profile, subsets, sizes: ModSizes, dataset: str = "fashion-mnist", processor=None) -> ModData:

    n_c, n_e = sizes.collect_images, sizes.eval_images
    collect = {"A": {}, "B": {}}
    xs, ys, unit = [], [], []
    kw = {} if dataset == "fashion-mnist" and processor is None else {"processor": processor}
    for i, c in enumerate(subsets):
        x, y = image_split(dataset, split="collect", n_images=2 * n_c, classes=[c], **kw)
        collect["A"][c] = EvalSet("image", x[:n_c], y[:n_c])
        collect["B"][c] = EvalSet("image", x[n_c:], y[n_c:])
        x, y = image_split(dataset, split="eval", n_images=n_e, classes=[c], **kw)
        xs.append(x)
        ys.append(y)
        unit.append(np.full(len(y), i))
    described = {"subsets": "Fashion-MNIST classes; collect split (first 5,000 test images): two "
                            "disjoint samples A and B; eval split (last 5,000) for every top1",
                 "reference": "balanced union of the 10 classes"}
    if dataset != "fashion-mnist":
        described = {"subsets": f"CIFAR-20 superclasses of {dataset} (coarse labels; top1 on the 100 fine "
                                f"labels); collect split (train images 10,000-49,999): two disjoint samples "
                                f"A and B; eval split (the 10,000 test images) for every top1",
                     "reference": f"balanced union of the {len(subsets)} superclasses"}
    return ModData("image", list(subsets), list(subsets), collect, EvalSet("image", torch.cat(xs), torch.cat(ys)),
                   np.concatenate(unit),
                   sizes={"collect_images_per_class_per_sample": n_c, "eval_images_per_class": n_e,
                          "n_subsets": len(subsets)},
                   described=described)
