"""The paper's Table 2 objectives: next-sentence positives (``--positive next[:K]``) and two encoders."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from simcse_analysis.errors import InputError
from trainers.config import TrainConfig
from trainers.data import ContrastiveCollator, load_training_data
from trainers.model import SimCSEModel
from trainers.objectives import simcse_loss
from trainers.sweeps import parse_grid
from trainers.views import NeighbourPositive, parse_positive, positive_name


@pytest.fixture(scope="module")
def tokenizer(tiny_trainer_bert):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_trainer_bert))


@pytest.fixture()
def two_files(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("a0\na1\n\na2\na3\n", encoding="utf-8")  # the blank line is skipped, as everywhere
    b = tmp_path / "b.txt"
    b.write_text("b0\nb1\nb2\n", encoding="utf-8")
    return a, b


# ------------------------------------------------------------------------------ next-sentence data
def test_next_pairs_each_line_with_its_successor_within_its_file(two_files):
    data = load_training_data(list(two_files), "unsup", "next")
    assert data.sent0 == ["a0", "a1", "a2", "b0", "b1"]  # a3 and b2 have no successor
    assert data.neighbours == [["a1"], ["a2"], ["a3"], ["b1"], ["b2"]]  # never b0 after a3
    assert [f["rows"] for f in data.files] == [3, 2]


def test_next_k_offers_the_following_k_lines(two_files):
    data = load_training_data(list(two_files), "unsup", "next:3")
    assert data.neighbours == [["a1", "a2", "a3"], ["a2", "a3"], ["a3"], ["b1", "b2"], ["b2"]]


def test_next_positive_batches_anchor_and_a_drawn_neighbour(two_files, tokenizer):
    data = load_training_data(list(two_files), "unsup", "next:3")
    collate = ContrastiveCollator(data, tokenizer, 16, views=parse_positive("next:3"), seed=5)
    idx = [0, 1, 3]
    batch = collate(idx)
    texts = [[tokenizer.decode(batch["input_ids"][r, v], skip_special_tokens=True) for v in (0, 1)]
             for r in range(len(idx))]
    assert [t[0] for t in texts] == ["a0", "a1", "b0"]
    for (anchor, positive), i in zip(texts, idx):
        assert positive in data.neighbours[i]
    assert torch.equal(collate(idx)["input_ids"], batch["input_ids"])  # seeded per batch
    # over many batches every candidate of row 0 is drawn, uniformly
    from trainers.data import batch_seed

    draws = [random.Random(batch_seed(s, [0])).choice(data.neighbours[0]) for s in range(3000)]
    counts = {c: draws.count(c) for c in data.neighbours[0]}
    assert all(850 < n < 1150 for n in counts.values()), counts


def test_next_positive_specs():
    assert parse_positive("next") == NeighbourPositive(1)
    assert positive_name(parse_positive("next:3")) == "next:3"
    assert positive_name(parse_positive("dropout")) == "dropout"
    assert positive_name(parse_positive("crop:10%")) == "crop:0.1"
    for bad in ("next:0", "next:x"):
        with pytest.raises(InputError, match="next:3"):
            parse_positive(bad)
    with pytest.raises(InputError, match="load_training_data"):
        parse_positive("next")(["a"], random.Random(0))


def test_next_needs_unsupervised_text_with_two_lines(tmp_path, tiny_nli):
    one = tmp_path / "one.txt"
    one.write_text("only\n", encoding="utf-8")
    with pytest.raises(InputError, match="at least two lines"):
        load_training_data([one], "unsup", "next")
    with pytest.raises(InputError, match="unsupervised SimCSE only"):
        load_training_data([tiny_nli], "sup", "next")


# ------------------------------------------------------------------------------ two encoders
@pytest.fixture()
def unsup_batch(tiny_corpus, tokenizer):
    data = load_training_data([tiny_corpus], "unsup")
    return ContrastiveCollator(data, tokenizer, 32, seed=0)(list(range(8)))


def test_two_encoders_start_equal_but_are_independent(tiny_trainer_bert, unsup_batch):
    m = SimCSEModel.from_pretrained(str(tiny_trainer_bert), pooler="cls", dropout=0.0, two_encoders=True).train()
    first, second = dict(m.encoder.named_parameters()), dict(m.second_encoder.named_parameters())
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) and first[k] is not second[k] for k in first)
    out = m(**unsup_batch)
    ids, mask = unsup_batch["input_ids"], unsup_batch["attention_mask"]
    z1 = m.embed(ids[:, 0], mask[:, 0])
    z2 = m.embed(ids[:, 1], mask[:, 1], encoder=m.second_encoder)
    assert out["loss"].item() == pytest.approx(simcse_loss(z1, z2, temperature=0.05).item(), rel=1e-5)
    out["loss"].backward()
    for enc in (m.encoder, m.second_encoder):  # both receive gradient, the MLP of each too
        for name in ("embeddings.word_embeddings.weight", "pooler.dense.weight"):
            g = dict(enc.named_parameters())[name].grad
            assert g is not None and g.abs().sum() > 0
    g1 = dict(m.encoder.named_parameters())["embeddings.word_embeddings.weight"].grad
    g2 = dict(m.second_encoder.named_parameters())["embeddings.word_embeddings.weight"].grad
    assert not torch.allclose(g1, g2)  # anchors and positives pull differently


def test_two_encoders_with_hard_negatives_route_all_but_the_anchor_to_the_second(tiny_trainer_bert, tiny_nli,
                                                                                 tokenizer):
    data = load_training_data([tiny_nli], "sup")
    batch = ContrastiveCollator(data, tokenizer, 32, seed=0)(list(range(6)))
    m = SimCSEModel.from_pretrained(str(tiny_trainer_bert), pooler="avg", dropout=0.0, two_encoders=True).eval()
    with torch.no_grad():  # perturb the second encoder so the two differ
        m.second_encoder.embeddings.word_embeddings.weight.add_(0.5)
        z = m.embed_views(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        ids, mask = batch["input_ids"], batch["attention_mask"]
        torch.testing.assert_close(z[:, 0], m.embed(ids[:, 0], mask[:, 0]))
        for s in (1, 2):
            torch.testing.assert_close(z[:, s], m.embed(ids[:, s], mask[:, s], encoder=m.second_encoder))


def test_two_encoders_refuse_a_fixed_mask():
    cfg = TrainConfig("unsup", "m", ["f.txt"], "out", fixed_dropout_mask=True, two_encoders=True)
    with pytest.raises(InputError, match="two-encoders"):
        cfg.resolved()


def test_two_encoders_round_trip_through_command_line_and_grid():
    cfg = TrainConfig("unsup", "m", ["f.txt"], "out", positive="next:3", two_encoders=True)
    args = cfg.cli_args()
    assert "--two-encoders" in args and args[args.index("--positive") + 1] == "next:3"
    assert "--two-encoders" not in TrainConfig("unsup", "m", ["f.txt"], "out").cli_args()
    grid = parse_grid(["two_encoders=false,true", "positive=dropout,next,next:3"])
    assert grid == {"two_encoders": ["false", "true"], "positive": ["dropout", "next", "next:3"]}
    # an older run record without the field is the same run as two_encoders=False
    old = json.loads(json.dumps(TrainConfig("unsup", "m", ["f.txt"], "out").to_dict()))
    old.pop("two_encoders")
    assert TrainConfig.from_dict(old).identity() == TrainConfig("unsup", "m", ["f.txt"], "out").identity()


def test_training_with_next_sentences_and_two_encoders_saves_the_first_encoder(tmp_path, tiny_trainer_bert,
                                                                                tiny_corpus, small_data_dir):
    from safetensors.torch import load_file
    from transformers import AutoModel

    from simcse_analysis.checkpoint import METADATA_FILE
    from trainers.loop import train

    cfg = TrainConfig("unsup", str(tiny_trainer_bert), [str(tiny_corpus)], str(tmp_path / "run"), batch_size=8,
                      max_steps=2, eval_steps=1, dropout=0.1, positive="next:3", two_encoders=True,
                      data_dir=str(small_data_dir))
    result = train(cfg, progress=False)
    assert [e["step"] for e in result.trajectory] == [0, 1, 2]
    meta = json.loads((Path(result.last_dir) / METADATA_FILE).read_text())
    assert meta["positive"] == "next:3" and meta["two_encoders"] is True
    assert meta["data"][0]["rows"] == 63  # 64 lines, the last has no successor
    saved = load_file(str(Path(result.last_dir) / "model.safetensors"))
    plain = AutoModel.from_pretrained(str(tiny_trainer_bert)).state_dict()
    assert not any("second_encoder" in k for k in saved)
    assert set(saved) <= set(plain) and any(not torch.equal(saved[k], plain[k]) for k in saved)  # it trained
