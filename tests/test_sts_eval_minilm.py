"""Correctness floor: all-MiniLM-L6-v2 on the raw STS-B test split, against sentence-transformers."""

from __future__ import annotations

import pytest

from simcse_analysis.sts_data import load_sts
from simcse_analysis.sts_eval import evaluate_sts

pytestmark = pytest.mark.slow


def test_minilm_stsb_test_spearman_equals_sentence_transformers(minilm_path, data_dir):
    from sentence_transformers import SentenceTransformer
    try:  # sentence-transformers >= 6 moved the evaluators
        from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
    except ImportError:
        from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator

    from simcse_analysis.encoder import load_encoder

    encoder = load_encoder(minilm_path)
    assert encoder.pooler == "avg"  # the mean pooling its modules.json declares
    ours = evaluate_sts(encoder, tasks="STSBenchmark", data_dir=data_dir, split="test", variant="raw")

    [test] = load_sts("STSBenchmark", data_dir, "test", "raw")
    peer_model = SentenceTransformer(str(minilm_path), device="cpu")
    evaluator = EmbeddingSimilarityEvaluator(list(test.sentences1), list(test.sentences2),
                                             (test.scores / 5.0).tolist(), main_similarity="cosine",
                                             batch_size=64, write_csv=False)
    peer = 100.0 * evaluator(peer_model)["spearman_cosine"]

    assert ours.scores["STSBenchmark"] == pytest.approx(peer, abs=0.01)
    assert round(ours.scores["STSBenchmark"], 2) == 82.03  # the published floor for this checkpoint
