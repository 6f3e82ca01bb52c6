"""Named sample-size profiles.

A profile fixes how much data every experiment uses (ABL's sizes are its own fields; MOD's and BCL's its
:attr:`Profile.mod` and :attr:`Profile.bcl`); the claims' decision rules, seeds and bootstrap
settings never depend on it. ``paper`` is the papers' own sizes (ABL section 3.1: 100,000 evaluation
tokens, 1,000 evaluation images; the code's 100,000 collection tokens per dataset, texts cut at 1,000
tokens). ``small`` is the main job's default, ``ci`` what ``.ci/run`` uses.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from core.batching import GPU_BUDGET, Budget
from core.errors import check_name


#: The text subsets that the ``ci`` and ``small`` profiles prune in MOD: those that appear in the a-priori
#: related pairs of MOD-4 (offline-assets.md), fixed before any run so that every related pair is measured;
#: the other six subsets still enter the reference set D_r. The ``paper`` profile uses every text subset.
CI_TEXT_SUBSETS: tuple[str, ...] = ("bbc-politics", "parliament", "mmlu-bio", "mmlu-med", "health-tweets",
                                    "bbc-tech", "mmlu-cs", "code", "mmlu-math", "mmlu-physics")


@dataclass(frozen=True)
class ModSizes:
    """The MOD sample sizes of a profile (MOD section 2.2; claims.md, "Sample design").

    Attributes
    ----------
    text_subsets : tuple of str or None
        The small tier's text subsets pruned and evaluated (:data:`CI_TEXT_SUBSETS`); None: every one
        (the full tier's ci and small profiles prune ``core.mod.subsets.FULL_CI_TEXT_SUBSETS``).
    collect_tokens : int
        Collection tokens per subset and per sample (two disjoint samples, A and B, for MOD-3).
    eval_tokens : int
        Evaluation tokens per subset.
    eval_seq_len : int or None
        Tokens per evaluation window (``core.mod.subsets.eval_seq_len``; None: the profile's
        ``seq_len``); the collection windows keep the profile's ``seq_len``.
    eval_doc_windows : int or None
        The most evaluation windows one document may give (None: no limit), so that each subset's evaluation set spans
        the profile's ``min_eval_documents``: 256 = 16 x 16 (ci), 512 = 16 x 32 (small), 4,800 = 100 x 48
        (paper: the evaluation split of MMLU's computer-science group is too short for 100 windows of 64).
    collect_images, eval_images : int
        Images per class and collection sample, and per class for evaluation.
    random_cross_pruning_text : bool
        Whether the random twin of a language model gets its own relative-accuracy matrix (figures only:
        no claim reads it, and a random language model sits near top1 0); image models always get it.
    collect_tokens_by_family : tuple of (str, int) pairs
        ``(subset-name prefix, collect_tokens)`` for the subsets of a family whose collection split cannot
        hold ``2 x collect_tokens`` (``core.mod.subsets.collect_tokens_for``): the paper profile's MMLU
        groups (``mmlu:``) collect 3,000 tokens per sample (the rationale is at
        ``core.mod.subsets.collect_tokens_for``). Empty: none.
    """

    text_subsets: tuple[str, ...] | None
    collect_tokens: int
    eval_tokens: int
    eval_seq_len: int | None
    eval_doc_windows: int | None
    collect_images: int
    eval_images: int
    random_cross_pruning_text: bool
    collect_tokens_by_family: tuple[tuple[str, int], ...] = ()

    def to_dict(self) -> dict:
        """The sizes as a dict (what the MOD cache keys hold); an empty ``collect_tokens_by_family`` is
        left out, a non-empty one is a ``{prefix: tokens}`` dict."""
        out = asdict(self)
        by_family = out.pop("collect_tokens_by_family")
        return {**out, **({"collect_tokens_by_family": dict(by_family)} if by_family else {})}


@dataclass(frozen=True)
class BclSizes:
    """The BCL sample sizes of a profile (claims.md, "Sample design"; ``core.bcl.experiment``).

    Attributes
    ----------
    collect_tokens : int
        Tokens of the collection corpus (the representations).
    seq_len : int
        Its window length (capped by the model's maximum length).
    max_doc_tokens : int
        Collection documents cut at this many tokens.
    sentence_len : int
        Evaluation "sentence" length, tokens.
    eval_tokens : int
        Tokens of the evaluation pool.
    eval_max_doc_tokens : int
        Evaluation documents cut at this many tokens, so that the pool spreads over many documents (the
        small tier's ``wiki`` evaluation split has 35 documents; cut at 512 tokens its first 16,384
        tokens span 31-33 of them, uncut 3).
    max_sentences : int
        Sentences per cluster (``core.bcl.sentences.select_sentences``).
    min_documents : int
        Documents the union of a setup's evaluated clusters' sentences must span (claims.md, "Sample
        design": 16, ``paper`` 100), topped up by ``core.bcl.sentences.select_sentences``.
    max_clusters : int or None
        Clusters evaluated per setup (a seeded random sample of the non-skipped ones); None: all.
    methods : tuple of str
        Representation variants clustered besides ``filter`` (``refine`` always comes from ``filter``).
    n_random_sets : int
        Random word sets per cluster for BCL-8.
    batch_size : int
        Windows per forward pass of the representations on a CPU.
    batch_rows : int
        Rows per forward pass of the interventions.
    """

    collect_tokens: int
    seq_len: int
    sentence_len: int
    eval_tokens: int
    eval_max_doc_tokens: int
    max_sentences: int
    min_documents: int
    max_clusters: int | None
    methods: tuple[str, ...]
    n_random_sets: int
    batch_size: int
    batch_rows: int
    max_doc_tokens: int

    def to_dict(self) -> dict:
        """The sizes as a dict (what the BCL cache keys and results hold; ``methods`` a tuple)."""
        return asdict(self)


@dataclass(frozen=True)
class Profile:
    """Sample sizes of one profile.

    Attributes
    ----------
    name : str
    collect_tokens, eval_tokens : int
        Text tokens of the collection split (statistics) and of the evaluation split.
    collect_images, eval_images : int
        Images of the collection and evaluation splits.
    seq_len : int
        Tokens per text window (capped by the model's maximum length).
    batch_size : int
        Windows or images per forward pass on a CPU (text batches hold ``batch_size`` windows).
    gpu_tokens_per_batch, gpu_images_per_batch : int
        On a GPU (:meth:`batch_size_for`): text tokens per forward pass (a 7B model's 1,000-token
        windows go 16 at a time) and images per forward pass (at 8 a GPU is bound by launch
        latency). Results do not depend on the batch beyond float rounding; a batch that does not fit
        the device is halved (:func:`core.batching.with_backoff`). Not sample sizes: left out of
        :meth:`to_dict` (cache keys stay as they were; the experiments key on the device).
    eval_tokens_masked : int or None
        Evaluation tokens for masked LMs, which score only the 15% of positions they mask and cost a
        fraction of a decoder's forward per token; None means ``eval_tokens``.
    eval_seq_len, eval_seq_len_masked : int or None
        Tokens per evaluation window (special tokens included; capped by the model's maximum length)
        for decoders and for masked LMs; None means ``seq_len`` (``eval_seq_len`` for masked LMs).
        Collection windows keep ``seq_len``.
    eval_doc_windows : int or None
        The most evaluation windows one document may give (``core.data.windows.text_windows(doc_windows=)``),
        so that an evaluation set of ``eval_tokens`` spans at least ``eval_tokens / (eval_doc_windows *
        eval_seq_len)`` documents; None: no limit.
    min_eval_documents : int or None
        Distinct documents every text evaluation set must reach (claims.md, "Sample design": 16, the
        ``paper`` profile 100); experiments fail with a message naming the set below it. None: no
        minimum.
    readings : tuple of str
        Alternate readings (claims.md, "Readings"; :mod:`core.readings`) that run by default; the
        ``paper`` profile runs every one. Not a sample size: left out of :meth:`to_dict` (experiments
        key their caches on the readings they compute).
    mod : ModSizes or None
        The MOD sample sizes (:meth:`sizes_of`); None for a profile that runs no MOD experiment. Left out
        of :meth:`to_dict`: the MOD experiment keys its cache on them itself.
    bcl : BclSizes or None
        The BCL sample sizes, likewise.
    """

    name: str
    collect_tokens: int
    eval_tokens: int
    collect_images: int
    eval_images: int
    seq_len: int
    batch_size: int
    eval_tokens_masked: int | None = None
    readings: tuple[str, ...] = ()
    eval_seq_len: int | None = None
    eval_seq_len_masked: int | None = None
    eval_doc_windows: int | None = None
    min_eval_documents: int | None = None
    gpu_tokens_per_batch: int = GPU_BUDGET.tokens
    gpu_images_per_batch: int = GPU_BUDGET.images
    mod: ModSizes | None = None
    bcl: BclSizes | None = None

    def sizes_of(self, paper: str) -> ModSizes | BclSizes:
        """The sample sizes of ``paper`` (``"mod"`` or ``"bcl"``): :attr:`mod` or :attr:`bcl`.

        Raises
        ------
        UnknownNameError
            For another paper (the message lists the valid ones).
        ValueError
            When this profile has none (a profile built without them), naming the profile.
        """
        sizes = getattr(self, check_name("paper with sizes of its own", paper, ("mod", "bcl")))
        if sizes is None:
            raise ValueError(f"profile {self.name!r} has no {paper.upper()} sizes (Profile.{paper}); the named "
                             f"profiles have them: {', '.join(PROFILES)}")
        return sizes

    def batch_size_for(self, device) -> int | Budget:
        """Items per forward pass on ``device`` (str or torch.device): ``batch_size`` on a CPU, a
        :class:`core.batching.Budget` of ``gpu_tokens_per_batch`` tokens / ``gpu_images_per_batch``
        images on any other device (what :func:`core.evaluate.evaluate`,
        :func:`core.neurons.activations.collect_stats` and the BCL representations take)."""
        import torch

        if torch.device(device).type == "cpu":
            return self.batch_size
        return Budget(tokens=self.gpu_tokens_per_batch, images=self.gpu_images_per_batch)

    def eval_tokens_for(self, kind: str) -> int:
        """Evaluation tokens for a text model of ``kind`` (``"causal"`` or ``"masked"``)."""
        if kind == "masked" and self.eval_tokens_masked is not None:
            return self.eval_tokens_masked
        return self.eval_tokens

    def eval_seq_len_for(self, kind: str, max_length: int | None = None) -> int:
        """Evaluation window length for a text model of ``kind``, capped by ``max_length``."""
        length = self.eval_seq_len or self.seq_len
        if kind == "masked" and self.eval_seq_len_masked is not None:
            length = self.eval_seq_len_masked
        return min(length, max_length or length)

    def check_documents(self, n_documents: int, what: str) -> None:
        """Raise ValueError when an evaluation set (``what``) spans fewer than ``min_eval_documents``."""
        if self.min_eval_documents is not None and n_documents < self.min_eval_documents:
            raise ValueError(f"{what} spans {n_documents} distinct documents; profile {self.name!r} needs at "
                             f"least {self.min_eval_documents} (claims.md, Sample design)")

    def to_dict(self) -> dict:
        """The sizes as a dict; unset optional sizes are left out (cache keys stay as they were)."""
        return {k: v for k, v in asdict(self).items() if v is not None and k not in _NOT_SIZES}


#: Profile fields that are not sample sizes: left out of :meth:`Profile.to_dict` (and the cache keys).
_NOT_SIZES = frozenset({"readings", "gpu_tokens_per_batch", "gpu_images_per_batch", "mod", "bcl"})

#: MOD sizes per profile. small fits the main job's 45 minutes on 2 cores: twice ci's evaluation tokens
#: per subset (finer relative-top1 steps for the bisection), ci's collection sample.
_MOD = {
    "ci": ModSizes(text_subsets=CI_TEXT_SUBSETS, collect_tokens=512, eval_tokens=256, eval_seq_len=16,
                   eval_doc_windows=1, collect_images=100, eval_images=100, random_cross_pruning_text=False),
    "small": ModSizes(text_subsets=CI_TEXT_SUBSETS, collect_tokens=512, eval_tokens=512, eval_seq_len=32,
                      eval_doc_windows=1, collect_images=200, eval_images=200, random_cross_pruning_text=False),
    "paper": ModSizes(text_subsets=None, collect_tokens=8192, eval_tokens=4800, eval_seq_len=48,
                      eval_doc_windows=1, collect_images=200, eval_images=400, random_cross_pruning_text=True,
                      collect_tokens_by_family=(("mmlu:", 3000),)),
}
#: BCL sizes per profile. small fits the main job's 45 minutes on 2 cores: every intervened cluster costs
#: 17 conditions x max_sentences forward passes, so small doubles ci's sentences and corpus, not its setups.
_BCL = {
    "ci": BclSizes(collect_tokens=16_384, seq_len=128, sentence_len=32, eval_tokens=16_384,
                   eval_max_doc_tokens=512, max_sentences=2, min_documents=16, max_clusters=12,
                   methods=("filter",), n_random_sets=100, batch_size=8, batch_rows=34, max_doc_tokens=100_000),
    "small": BclSizes(collect_tokens=32_768, seq_len=256, sentence_len=32, eval_tokens=16_384,
                      eval_max_doc_tokens=512, max_sentences=4, min_documents=16, max_clusters=12,
                      methods=("filter",), n_random_sets=100, batch_size=8, batch_rows=34,
                      max_doc_tokens=100_000),
    "paper": BclSizes(collect_tokens=250_000, seq_len=512, sentence_len=32, eval_tokens=100_000,
                      eval_max_doc_tokens=1_000, max_sentences=32, min_documents=100, max_clusters=None,
                      methods=("filter", "tfidf", "smooth"), n_random_sets=100, batch_size=8, batch_rows=34,
                      max_doc_tokens=100_000),
}

PROFILES: dict[str, Profile] = {
    # paper: 100,000 evaluation tokens in windows of 1,000, one per document: 100 documents (claims.md,
    # Sample design), each cut like the papers' texts
    "paper": Profile("paper", collect_tokens=100_000, eval_tokens=100_000, collect_images=5_000,
                     eval_images=1_000, seq_len=1_000, batch_size=8,
                     readings=("R1", "R2", "R3", "R4", "R5"), eval_seq_len=1_000, eval_doc_windows=1,
                     min_eval_documents=100, mod=_MOD["paper"], bcl=_BCL["paper"]),
    # small: sized so that the main job fits 45 minutes on 2 CPU cores. smollm2-135m's cost per
    # token is the same in windows of 64 as in windows of 256 (measured with benchmark/test_bench_scoring.py), and one ABL sweep
    # is 163 evaluations, so decoders keep 1,024 evaluation tokens, now 16 documents x one window of 64;
    # the masked LM, cheaper per token and scoring only 15% of them, keeps 4,096: 32 documents x 128.
    # Alternate readings: R1 (MOD: re-evaluates only the rows whose lower count differs) and R4 (BCL:
    # about 3.4 minutes, counted in forward passes) fit the budget; R2 (its own searches), R3 and R5
    # (each doubles BCL's interventions, about 11 minutes) do not, and the report lists them as skipped.
    "small": Profile("small", collect_tokens=16_384, eval_tokens=1_024, collect_images=2_000,
                     eval_images=1_000, seq_len=256, batch_size=8, eval_tokens_masked=4_096,
                     eval_seq_len=64, eval_seq_len_masked=128, eval_doc_windows=1, min_eval_documents=16,
                     readings=("R1", "R4"), mod=_MOD["small"], bcl=_BCL["small"]),
    "ci": Profile("ci", collect_tokens=4_096, eval_tokens=1_024, collect_images=1_000,
                  eval_images=500, seq_len=128, batch_size=8, eval_seq_len=64, eval_doc_windows=1,
                  min_eval_documents=16, mod=_MOD["ci"], bcl=_BCL["ci"]),
}

# Rehearsal models (core.zoo.rehearsal: the papers' widths, random weights; their verdicts mean nothing).
# rehearsal: the papers' sizes on the offline data, for the device run of the full tier's code paths.
# rehearsal-ci: the ci design (16 documents of one window each, the same fractions, seeds and subsets) with
# shorter windows and fewer images, so that a full-width layer of every paper runs within minutes on 2
# CPU cores (tests/test_rehearsal_run.py): one full-width forward costs what ~100-1,000 forwards of the
# small tier's models cost, and an ABL sweep is 163 evaluations (109 on a ViT). Their MOD and BCL sizes: the
# paper's (rehearsal); ci's with windows of 8 tokens and 8 images per class (MOD), and a quarter of ci's
# BCL corpus (rehearsal-ci).
PROFILES["rehearsal"] = replace(PROFILES["paper"], name="rehearsal")
PROFILES["rehearsal-ci"] = Profile("rehearsal-ci", collect_tokens=1_024, eval_tokens=64, collect_images=32,
                                   eval_images=8, seq_len=64, batch_size=8, eval_tokens_masked=256,
                                   eval_seq_len=4, eval_seq_len_masked=16, eval_doc_windows=1,
                                   min_eval_documents=16,
                                   mod=replace(_MOD["ci"], collect_tokens=256, eval_tokens=128, eval_seq_len=8,
                                               collect_images=8, eval_images=8),
                                   bcl=replace(_BCL["ci"], collect_tokens=4_096))


def get_profile(name: str) -> Profile:
    """The profile called ``name``; an unknown name raises ``UnknownNameError`` listing the valid ones."""
    return PROFILES[check_name("profile", name, PROFILES)]


#: Profiles that produce verdicts, each held to its ``min_eval_documents`` (claims.md, Sample design).
VERDICT_PROFILES: tuple[str, ...] = ("ci", "small", "paper")
