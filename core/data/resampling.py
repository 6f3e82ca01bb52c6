"""Resampling inputs of ABL appendix 7.1: activations on inputs unrelated to the data.

Text inputs are one window each, wrapped with the tokenizer's special tokens like a window of
:func:`core.data.windows.text_windows`; image inputs are normalised like the images.

Provides
--------
:func:`random_characters` (RS1), :func:`random_token_ids` (RS2), :func:`generated_text` and
:func:`generated_window` (RS3), :func:`random_pixels` (ViT resampling).
"""
from __future__ import annotations

import string

import numpy as np
import torch

from core.data.windows import ordinary_ids, piece_length, prefix_ids, window_wrapper


_CHARACTERS = np.array(list(string.ascii_letters + string.digits + " "))


def random_characters(tokenizer, seq_len: int, *, seed: int) -> torch.Tensor:
    """One window of a random string of ASCII letters, digits and spaces (ABL appendix 7.1, RS1).

    Characters are drawn uniformly from the 63 symbols by ``numpy.random.default_rng(seed)``; the
    string is made longer until it tokenises to at least one full window, then windowed as in
    :func:`text_windows` (its first window).

    Parameters
    ----------
    tokenizer : transformers fast tokenizer
    seq_len : int
        Window length, special tokens included.
    seed : int

    Returns
    -------
    torch.LongTensor of shape (seq_len,)

    Raises
    ------
    ValueError
        When ``seq_len`` leaves no room beside the special tokens.
    """
    length = piece_length(tokenizer, seq_len)
    rng = np.random.default_rng(seed)
    text = ""
    n_chars = 8 * length
    while True:
        text += "".join(rng.choice(_CHARACTERS, size=n_chars - len(text)))
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) > length:  # one extra token: the last piece token is not cut mid-word
            return torch.tensor(window_wrapper(tokenizer)(ids[:length]), dtype=torch.long)
        n_chars *= 2


def random_token_ids(tokenizer, seq_len: int, *, seed: int) -> torch.Tensor:
    """One window of uniformly random token ids (ABL appendix 7.1, RS2).

    ``seq_len - n_special`` ids drawn uniformly (with replacement) by ``numpy.random.default_rng(seed)``
    from the vocabulary less ``tokenizer.all_special_ids``, wrapped with the tokenizer's special tokens
    like a window of :func:`text_windows`.

    Parameters
    ----------
    tokenizer : transformers tokenizer
    seq_len : int
        Window length, special tokens included.
    seed : int

    Returns
    -------
    torch.LongTensor of shape (seq_len,)

    Raises
    ------
    ValueError
        When ``seq_len`` leaves no room beside the special tokens.
    """
    length = piece_length(tokenizer, seq_len)
    ids = np.random.default_rng(seed).choice(ordinary_ids(tokenizer), size=length)
    return torch.tensor(window_wrapper(tokenizer)(ids.tolist()), dtype=torch.long)


@torch.no_grad()
def generated_text(model, tokenizer, n_tokens: int, *, seed: int, device: str | torch.device = "cpu") -> str:
    """Text sampled from a causal LM, starting from one random token (ABL appendix 7.1, RS3).

    The first token is drawn uniformly from the non-special vocabulary by
    ``numpy.random.default_rng(seed)`` (after the tokenizer's prefix special tokens, e.g. BOS); then
    ``n_tokens`` tokens are sampled one at a time at temperature 1 with ``torch.multinomial`` and a
    ``torch.Generator`` seeded with ``seed``, reusing the KV cache. Special tokens are never sampled
    (their logits are set to -inf), so the text has no early end. The same seed, model and device give
    the same text; different devices may not.

    Parameters
    ----------
    model : transformers causal LM (``AutoModelForCausalLM``)
    tokenizer : its tokenizer
    n_tokens : int
        Tokens to sample after the first one, >= 0.
    seed : int
    device : str or torch.device, default "cpu"
        Where the model already is.

    Returns
    -------
    str
        The first token and the sampled ones, decoded without special tokens.
    """
    if n_tokens < 0:
        raise ValueError(f"n_tokens must be >= 0, got {n_tokens}")
    ordinary = ordinary_ids(tokenizer)
    first = int(np.random.default_rng(seed).choice(ordinary))
    prefix = prefix_ids(tokenizer)
    generator = torch.Generator(device=device).manual_seed(seed)
    input_ids = torch.tensor([[*prefix, first]], dtype=torch.long, device=device)
    tokens, past = [first], None
    was_training = model.training
    model.eval()
    try:
        for _ in range(n_tokens):
            out = model(input_ids=input_ids, past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = out.logits[0, -1].float()
            banned = [i for i in tokenizer.all_special_ids if i < logits.shape[-1]]
            logits[banned] = float("-inf")
            nxt = int(torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator))
            tokens.append(nxt)
            input_ids = torch.tensor([[nxt]], dtype=torch.long, device=device)
    finally:
        model.train(was_training)
    return tokenizer.decode(tokens, skip_special_tokens=True)


def generated_window(text: str, tokenizer, seq_len: int) -> torch.Tensor:
    """One window of a text (e.g. from :func:`generated_text`), repeated if it is too short.

    Parameters
    ----------
    text : str
        Must contain at least one token.
    tokenizer : transformers fast tokenizer
    seq_len : int
        Window length, special tokens included.

    Returns
    -------
    torch.LongTensor of shape (seq_len,)

    Raises
    ------
    ValueError
        When the text has no tokens, or ``seq_len`` leaves no room beside the special tokens.
    """
    length = piece_length(tokenizer, seq_len)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"text {text[:50]!r} has no tokens")
    repeats = 1
    while len(ids) < length:
        repeats *= 2
        ids = tokenizer(" ".join([text] * repeats), add_special_tokens=False)["input_ids"]
    return torch.tensor(window_wrapper(tokenizer)(ids[:length]), dtype=torch.long)


def random_pixels(shape: tuple[int, ...], *, seed: int) -> torch.Tensor:
    """Uniform random pixels, normalised like the images (ABL appendix 7.1, ViT resampling).

    Pixels ``x ~ U[0, 1)`` drawn by ``numpy.random.default_rng(seed)``, returned as ``(x - 0.5) / 0.5``.

    Parameters
    ----------
    shape : tuple of int
        E.g. ``(n, 1, 28, 28)``.
    seed : int

    Returns
    -------
    torch.FloatTensor of the given shape, float32, values in [-1, 1)
    """
    x = np.random.default_rng(seed).random(tuple(shape), dtype=np.float32)
    return torch.from_numpy((x - 0.5) / 0.5)
