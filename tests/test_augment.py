"""Discrete augmentations (SimCSE Table 1): what each keeps, how much it removes, and its determinism."""

from __future__ import annotations

import random

import pytest

from simcse_analysis.errors import InputError
from trainers.augment import (
    PAPER_POSITIVES,
    crop,
    delete_one_word,
    parse_ratio,
    stochastic_round,
    word_deletion,
)
from trainers.views import parse_positive

SENTENCE = "the quick brown fox jumps over the lazy dog near the old river bank today"  # 15 words
WORDS = SENTENCE.split()


def _is_subsequence(short: list[str], long: list[str]) -> bool:
    it = iter(long)
    return all(w in it for w in short)


def _is_contiguous_span(short: list[str], long: list[str]) -> bool:
    n = len(short)
    return any(long[i:i + n] == short for i in range(len(long) - n + 1))


def test_stochastic_rounding_has_the_value_as_expectation():
    rng = random.Random(0)
    draws = [stochastic_round(2.3, rng) for _ in range(20_000)]
    assert set(draws) == {2, 3}
    assert sum(draws) / len(draws) == pytest.approx(2.3, abs=0.02)
    assert stochastic_round(4.0, rng) == 4


@pytest.mark.parametrize("ratio", [0.1, 0.2, 0.3])
def test_crop_keeps_one_contiguous_span_of_the_expected_length(ratio):
    rng = random.Random(1)
    lengths = []
    for _ in range(2000):
        out = crop(SENTENCE, ratio, rng).split()
        assert _is_contiguous_span(out, WORDS)
        lengths.append(len(out))
    # keep n − r(k·n) words: k·n = 15k lies between two integers, so exactly those two lengths occur
    low, high = len(WORDS) - int(ratio * 15) - 1, len(WORDS) - int(ratio * 15)
    assert set(lengths) <= {low, high}
    assert sum(lengths) / len(lengths) == pytest.approx(15 * (1 - ratio), abs=0.05)


def test_crop_start_is_uniform_over_possible_spans():
    rng = random.Random(2)
    starts = {WORDS.index(crop(SENTENCE, 0.2, rng).split()[0]) for _ in range(500)}
    # keep 12 words: the span may start at word 0 … 3 ("the" at 0 and 6 collapses to 0)
    assert starts == {0, 1, 2, 3}


@pytest.mark.parametrize("ratio", [0.1, 0.2, 0.3])
def test_word_deletion_removes_the_expected_share_and_keeps_order(ratio):
    rng = random.Random(3)
    removed = []
    for _ in range(2000):
        out = word_deletion(SENTENCE, ratio, rng).split()
        assert _is_subsequence(out, WORDS)
        removed.append(len(WORDS) - len(out))
    assert sum(removed) / len(removed) == pytest.approx(15 * ratio, abs=0.05)


def test_word_deletion_positions_are_uniform():
    text = " ".join(f"w{i}" for i in range(10))
    rng = random.Random(4)
    hits = [0] * 10
    trials = 5000
    for _ in range(trials):
        kept = set(word_deletion(text, 0.2, rng).split())
        for i in range(10):
            hits[i] += f"w{i}" not in kept
    for h in hits:  # each word deleted with probability 2/10; binomial sd ≈ 0.0057
        assert h / trials == pytest.approx(0.2, abs=0.025)


def test_delete_one_word_removes_exactly_one_word():
    rng = random.Random(5)
    for _ in range(200):
        out = delete_one_word(SENTENCE, rng).split()
        assert len(out) == len(WORDS) - 1
        assert _is_subsequence(out, WORDS)


@pytest.mark.parametrize("fn", [lambda t, r: crop(t, 0.3, r), lambda t, r: word_deletion(t, 0.3, r), delete_one_word])
def test_augmentations_never_empty_a_sentence(fn):
    rng = random.Random(6)
    assert fn("single", rng) == "single"
    assert fn("", rng) == ""
    for _ in range(200):
        assert fn("two words", rng).split()


def test_same_seed_same_augmentation_different_seed_differs():
    a = [word_deletion(SENTENCE, 0.3, random.Random(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    others = {word_deletion(SENTENCE, 0.3, random.Random(s)) for s in range(20)}
    assert len(others) > 1


def test_positive_view_pairs_each_sentence_with_its_augmentation():
    views = parse_positive("word_deletion:0.2")
    sentences = [SENTENCE, "a b c d e f g h i j"]
    first, second = views(sentences, random.Random(8))
    assert first == sentences
    assert [len(s.split()) for s in second] != [len(s.split()) for s in sentences]
    assert all(_is_subsequence(b.split(), a.split()) for a, b in zip(first, second))
    # the view is a pure function of (sentences, seed): a resumed run rebuilds the same batch
    assert views(sentences, random.Random(8)) == (first, second)


def test_every_paper_positive_parses():
    for spec in PAPER_POSITIVES:
        views = parse_positive(spec)
        first, _second = views([SENTENCE], random.Random(0))
        assert first == [SENTENCE]


def test_percent_and_fraction_spell_the_same_ratio():
    assert parse_ratio("10%", "crop") == pytest.approx(0.1)
    assert parse_ratio("0.1", "crop") == pytest.approx(0.1)


@pytest.mark.parametrize("spec, needle", [
    ("crop", "needs the share"),
    ("crop:1.5", "must be in (0, 1)"),
    ("crop:0", "must be in (0, 1)"),
    ("word_deletion:abc", "word_deletion:abc"),
    ("delete_one_word:0.1", "takes no argument"),
    ("shuffle:0.1", "unknown positive view"),
])
def test_bad_positive_specs_name_the_fix(spec, needle):
    with pytest.raises(InputError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        parse_positive(spec)


def test_the_trainer_batches_an_augmented_second_view(minilm_path):
    from transformers import AutoTokenizer

    from trainers.data import ContrastiveCollator, TrainingData

    tok = AutoTokenizer.from_pretrained(str(minilm_path))
    data = TrainingData("unsup", [SENTENCE, "a b c d e f g h i j"])
    dropout = ContrastiveCollator(data, tok, 32, views=parse_positive("dropout"), seed=1)([0, 1])
    cropped = ContrastiveCollator(data, tok, 32, views=parse_positive("crop:0.3"), seed=1)([0, 1])
    ids, mask = cropped["input_ids"], cropped["attention_mask"]
    assert ids.shape[:2] == (2, 2)
    assert (ids[:, 0] == dropout["input_ids"][:, 0]).all()  # the anchor view is the sentence itself
    # crop 30 %: the positive keeps 15 − r(4.5) ∈ {10, 11} of 15 words, 7 of 10 words (+ [CLS], [SEP])
    assert mask[0, 1].sum().item() in (12, 13) and mask[1, 1].sum().item() == 9
    assert mask[0, 0].sum().item() == 17 and mask[1, 0].sum().item() == 12
