"""STS evaluation: Spearman of cosine, the three STS12-16 aggregations, and evaluate_sts end to end."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from simcse_analysis.errors import InputError
from simcse_analysis.sts_data import load_sts
from simcse_analysis.sts_eval import (
    aggregate,
    aggregate_all,
    aggregate_mean,
    aggregate_wmean,
    cosine_scores,
    evaluate_sts,
    results_from_json,
    results_to_json,
    spearman,
    spearman_of_cosine,
)


def textbook_rho(x, y) -> float:
    """Spearman without ties: 1 - 6 sum d_i^2 / (n (n^2 - 1)), d_i the rank difference."""
    x, y = np.asarray(x), np.asarray(y)
    n = len(x)
    d = np.argsort(np.argsort(x)) - np.argsort(np.argsort(y))
    return 1.0 - 6.0 * float(np.sum(d.astype(float) ** 2)) / (n * (n * n - 1))


def average_ranks(v) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their positions (by explicit grouping)."""
    order = sorted(range(len(v)), key=lambda i: v[i])
    ranks = np.empty(len(v))
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def hashing_bow(dim: int = 64):
    """Deterministic bag-of-words embedder: each lowercased token adds a hashed +-1 signature."""
    calls: list[list[str]] = []

    def encode(texts):
        calls.append(list(texts))
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for tok in t.lower().split():
                h = hashlib.sha256(tok.encode()).digest()
                out[i] += np.where(np.unpackbits(np.frombuffer(h, np.uint8))[:dim] > 0, 1.0, -1.0)
        return out

    encode.calls = calls
    return encode


# ------------------------------------------------------------------------------- pure metrics
def test_cosine_of_parallel_orthogonal_and_opposite_rows():
    a = np.array([[1.0, 0.0], [1.0, 0.0], [2.0, 2.0], [0.0, 0.0]])
    b = np.array([[3.0, 0.0], [0.0, 5.0], [-1.0, -1.0], [1.0, 1.0]])
    np.testing.assert_allclose(cosine_scores(a, b), [1.0, 0.0, -1.0, 0.0])  # zero vector -> 0


def test_cosine_is_invariant_to_rescaling_each_row():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(20, 8)), rng.normal(size=(20, 8))
    s = rng.uniform(0.1, 10, size=(20, 1))
    np.testing.assert_allclose(cosine_scores(a * s, b), cosine_scores(a, b), rtol=1e-12)


def test_spearman_without_ties_is_the_textbook_formula():
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    y = x + rng.normal(size=200)
    assert spearman(x, y) == pytest.approx(textbook_rho(x, y), abs=1e-12)


def test_spearman_with_ties_is_pearson_of_average_ranks():
    gold = [0.0, 1.0, 1.0, 2.5, 2.5, 2.5, 4.0, 5.0, 5.0, 3.0]
    sys_ = [0.1, 0.3, 0.2, 0.5, 0.4, 0.4, 0.9, 0.7, 0.8, 0.6]
    expected = np.corrcoef(average_ranks(sys_), average_ranks(gold))[0, 1]
    assert spearman(sys_, gold) == pytest.approx(expected, abs=1e-12)


def test_spearman_is_undefined_for_constant_scores():
    assert math.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


def test_spearman_of_cosine_is_one_for_gold_monotone_in_cosine():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(50, 16)), rng.normal(size=(50, 16))
    gold = np.exp(3 * cosine_scores(a, b))  # strictly increasing transform
    assert spearman_of_cosine(a, b, gold) == pytest.approx(1.0)
    assert spearman_of_cosine(a, b, -gold) == pytest.approx(-1.0)


@pytest.fixture()
def three_subsets():
    """Sub-datasets of different sizes and agreement, with no ties (so the textbook formula applies)."""
    rng = np.random.default_rng(3)
    system, gold = [], []
    for n, noise, offset in [(30, 0.2, 0.0), (50, 1.0, 2.0), (120, 3.0, -1.0)]:
        g = rng.uniform(0, 5, size=n)
        system.append(g + offset + noise * rng.normal(size=n))
        gold.append(g)
    return system, gold


def test_all_aggregation_is_one_spearman_over_the_concatenated_pairs(three_subsets):
    system, gold = three_subsets
    assert aggregate_all(system, gold) == pytest.approx(
        textbook_rho(np.concatenate(system), np.concatenate(gold)), abs=1e-12)


def test_mean_and_wmean_aggregations_average_per_subset_spearman(three_subsets):
    system, gold = three_subsets
    rhos = [textbook_rho(s, g) for s, g in zip(system, gold)]
    sizes = [len(g) for g in gold]
    assert aggregate_mean(system, gold) == pytest.approx(sum(rhos) / 3, abs=1e-12)
    assert aggregate_wmean(system, gold) == pytest.approx(
        sum(r * n for r, n in zip(rhos, sizes)) / sum(sizes), abs=1e-12)
    values = {a: aggregate(system, gold, a) for a in ("all", "mean", "wmean")}
    assert len({round(v, 6) for v in values.values()}) == 3  # the three really differ here


def test_unknown_aggregation_is_an_input_error(three_subsets):
    with pytest.raises(InputError, match="unknown aggregation 'median'"):
        aggregate(*three_subsets, aggregation="median")


# ------------------------------------------------------------------------------- evaluate_sts
def reference_task_score(embed, subsets, aggregation="all") -> float:
    """Encode both sides pair by pair (no de-duplication) and aggregate with scipy's spearmanr."""
    cos = [cosine_scores(embed(list(s.sentences1)), embed(list(s.sentences2))) for s in subsets]
    if aggregation == "all":
        return 100 * spearmanr(np.concatenate(cos), np.concatenate([s.scores for s in subsets]))[0]
    rhos = [spearmanr(c, s.scores)[0] for c, s in zip(cos, subsets)]
    weights = [len(s) for s in subsets] if aggregation == "wmean" else None
    return 100 * float(np.average(rhos, weights=weights))


@pytest.mark.parametrize("aggregation", ["all", "mean", "wmean"])
def test_evaluate_sts_matches_a_pairwise_reference(small_data_dir, aggregation):
    encode = hashing_bow()
    result = evaluate_sts(encode, data_dir=small_data_dir, aggregation=aggregation)
    tasks = ["STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICKRelatedness"]
    assert list(result.scores) == tasks + ["avg"]
    reference = hashing_bow()
    for task in tasks:
        expected = reference_task_score(reference, load_sts(task, small_data_dir), aggregation)
        assert result.scores[task] == pytest.approx(expected, abs=1e-9)
    assert result.scores["avg"] == pytest.approx(np.mean([result.scores[t] for t in tasks]))
    assert result.aggregation == aggregation and result.split == "test" and result.variant == "senteval"
    assert result.variants["SICKRelatedness"] == "raw"


def test_each_task_encodes_its_unique_sentences_once(small_data_dir):
    encode = hashing_bow()
    evaluate_sts(encode, tasks="STS12,STSBenchmark", data_dir=small_data_dir)
    assert len(encode.calls) == 2
    for call, task in zip(encode.calls, ["STS12", "STSBenchmark"]):
        subsets = load_sts(task, small_data_dir)
        assert len(call) == len(set(call))
        assert set(call) == {t for s in subsets for t in s.sentences1 + s.sentences2}


def test_per_subset_figures_are_reported_with_their_sizes(small_data_dir):
    result = evaluate_sts(hashing_bow(), tasks=["sts13"], data_dir=small_data_dir, aggregation="wmean")
    subsets = result.subsets["STS13"]
    assert list(subsets) == ["FNWN", "headlines", "OnWN"]
    rhos = [subsets[k]["spearman"] for k in subsets]
    ns = [subsets[k]["n"] for k in subsets]
    assert ns == [len(s) for s in load_sts("STS13", small_data_dir)]
    assert result.scores["STS13"] == pytest.approx(np.average(rhos, weights=ns))


def test_dev_split_defaults_to_the_tasks_that_have_one(small_data_dir):
    result = evaluate_sts(hashing_bow(), data_dir=small_data_dir, split="dev")
    assert list(result.scores) == ["STSBenchmark", "SICKRelatedness", "avg"]
    dev = load_sts("STSBenchmark", small_data_dir, "dev")
    assert result.scores["STSBenchmark"] == pytest.approx(reference_task_score(hashing_bow(), dev))


def test_semeval_task_on_dev_split_is_an_input_error(small_data_dir):
    with pytest.raises(InputError, match="STS12 has only a test split"):
        evaluate_sts(hashing_bow(), tasks=["STS12"], data_dir=small_data_dir, split="dev")


class ObjectEncoder:
    """Stands in for an Encoder: ``encode(texts, batch_size=...)`` plus the labelling attributes."""

    name, pooler, fingerprint = "toy", "avg", "f" * 64

    def __init__(self):
        self.embed = hashing_bow()
        self.batch_sizes = []

    def encode(self, texts, batch_size=64):
        self.batch_sizes.append(batch_size)
        return self.embed(texts)

    def describe(self):
        return {"model": self.name, "pooler": self.pooler}


def test_encoder_objects_and_plain_callables_give_the_same_scores(small_data_dir):
    obj = ObjectEncoder()
    a = evaluate_sts(obj, tasks="stsb", data_dir=small_data_dir, batch_size=7)
    b = evaluate_sts(hashing_bow(), tasks="stsb", data_dir=small_data_dir)
    assert a.scores == b.scores
    assert obj.batch_sizes == [7]
    assert (a.model, a.pooler, a.fingerprint, a.encoder) == ("toy", "avg", "f" * 64, obj.describe())
    assert (b.model, b.pooler, b.fingerprint) == (None, None, None)


def test_results_round_trip_through_json(small_data_dir):
    result = evaluate_sts(ObjectEncoder(), tasks="STS12,sick-r", data_dir=small_data_dir, variant="raw")
    doc = json.loads(json.dumps(results_to_json([result])))
    entry = doc["results"][0]
    assert set(entry) >= {"model", "pooler", "scores", "split", "variant", "aggregation", "data_dir", "fingerprint"}
    assert entry["scores"] == pytest.approx(result.scores)
    assert results_from_json(doc)[0] == result


def test_undefined_correlations_become_null_in_json(small_data_dir):
    constant = lambda texts: np.ones((len(texts), 4), dtype=np.float32)
    result = evaluate_sts(constant, tasks="stsb", data_dir=small_data_dir)
    assert math.isnan(result.scores["STSBenchmark"])
    text = json.dumps(results_to_json([result]), allow_nan=False)
    assert json.loads(text)["results"][0]["scores"]["STSBenchmark"] is None


def test_bad_encoder_output_shape_is_reported(small_data_dir):
    with pytest.raises(ValueError, match="expected \\(N, d\\)"):
        evaluate_sts(lambda texts: np.ones((3, 4)), tasks="stsb", data_dir=small_data_dir)
