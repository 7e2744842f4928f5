"""The SimCSE model wrapper and batches: views, dropout masks, the MLP head, hard negatives, MLM."""

from __future__ import annotations

import pytest
import torch

from simcse_analysis.errors import InputError
from trainers.data import ContrastiveCollator, load_training_data
from trainers.model import SimCSEModel, get_dropout
from trainers.objectives import simcse_loss


@pytest.fixture(scope="module")
def tokenizer(tiny_trainer_bert):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_trainer_bert))


@pytest.fixture()
def unsup_batch(tiny_corpus, tokenizer):
    data = load_training_data([tiny_corpus], "unsup")
    return ContrastiveCollator(data, tokenizer, 32, seed=0)(list(range(8)))


def test_dropout_rate_reaches_hidden_and_attention_layers(tiny_trainer_bert):
    m = SimCSEModel.from_pretrained(str(tiny_trainer_bert), pooler="cls_before_pooler", dropout=0.3)
    cfg = m.encoder.config
    assert (cfg.hidden_dropout_prob, cfg.attention_probs_dropout_prob) == (0.3, 0.3)
    assert get_dropout(cfg) == 0.3
    rates = {mod.p for mod in m.encoder.modules() if isinstance(mod, torch.nn.Dropout)}
    assert rates == {0.3}


def test_independent_dropout_masks_give_different_views(tiny_trainer_bert, unsup_batch):
    m = SimCSEModel.from_pretrained(str(tiny_trainer_bert), pooler="cls_before_pooler", dropout=0.1).train()
    z = m.embed_views(unsup_batch["input_ids"], unsup_batch["attention_mask"], unsup_batch.get("token_type_ids"))
    assert torch.equal(unsup_batch["input_ids"][:, 0], unsup_batch["input_ids"][:, 1])
    assert not torch.allclose(z[:, 0], z[:, 1])


def test_fixed_mask_views_are_identical(tiny_trainer_bert, unsup_batch):
    """The paper's "fixed 0.1": same text under the same dropout mask, so the two views coincide."""
    m = SimCSEModel.from_pretrained(str(tiny_trainer_bert), pooler="cls_before_pooler", dropout=0.1,
                                    fixed_dropout_mask=True).train()
    z = m.embed_views(unsup_batch["input_ids"], unsup_batch["attention_mask"], unsup_batch.get("token_type_ids"))
    assert torch.equal(z[:, 0], z[:, 1])
    # ... but it is still dropout-noised: a second pass draws another mask
    z_again = m.embed_views(unsup_batch["input_ids"], unsup_batch["attention_mask"],
                            unsup_batch.get("token_type_ids"))
    assert not torch.allclose(z[:, 0], z_again[:, 0])


def test_zero_dropout_views_are_identical(tiny_trainer_bert, unsup_batch):
    m = SimCSEModel.from_pretrained(str(tiny_trainer_bert), pooler="avg", dropout=0.0).train()
    z = m.embed_views(unsup_batch["input_ids"], unsup_batch["attention_mask"], unsup_batch.get("token_type_ids"))
    torch.testing.assert_close(z[:, 0], z[:, 1])


def test_model_loss_is_the_simcse_loss_of_its_own_embeddings(tiny_trainer_bert, unsup_batch):
    m = SimCSEModel.from_pretrained(str(tiny_trainer_bert), pooler="avg", dropout=0.0, temperature=0.1).train()
    out = m(**unsup_batch)
    ids, mask = unsup_batch["input_ids"], unsup_batch["attention_mask"]
    z1, z2 = m.embed(ids[:, 0], mask[:, 0]), m.embed(ids[:, 1], mask[:, 1])
    assert out["loss"].item() == pytest.approx(simcse_loss(z1, z2, temperature=0.1).item(), rel=1e-5)
    assert out["logits"].shape == (8, 8)


def test_gradient_reaches_the_encoder_through_both_views(tiny_trainer_bert, unsup_batch):
    m = SimCSEModel.from_pretrained(str(tiny_trainer_bert), pooler="cls", dropout=0.1).train()
    m(**unsup_batch)["loss"].backward()
    for name in ("embeddings.word_embeddings.weight", "pooler.dense.weight"):
        grad = dict(m.encoder.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0


def test_cls_pooler_is_a_fresh_mlp_stored_in_the_bert_pooler(tiny_trainer_bert, unsup_batch):
    from transformers import AutoModel

    base = AutoModel.from_pretrained(str(tiny_trainer_bert))
    a = SimCSEModel.from_pretrained(str(tiny_trainer_bert), pooler="cls", dropout=0.0, seed=7).train()
    b = SimCSEModel.from_pretrained(str(tiny_trainer_bert), pooler="cls", dropout=0.0, seed=7)
    dense = a.encoder.pooler.dense
    assert not torch.allclose(dense.weight, base.pooler.dense.weight)  # re-initialised, as the reference's MLP
    torch.testing.assert_close(dense.weight, b.encoder.pooler.dense.weight)  # ... reproducibly
    assert dense.bias.abs().sum() == 0
    std = a.encoder.config.initializer_range
    assert dense.weight.std().item() == pytest.approx(std, rel=0.2)
    ids, mask = unsup_batch["input_ids"][:, 0], unsup_batch["attention_mask"][:, 0]
    h_cls = a.encoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
    torch.testing.assert_close(a.embed(ids, mask), torch.tanh(h_cls @ dense.weight.T + dense.bias))


def test_mlp_only_train_evaluates_before_the_pooler(tiny_trainer_bert):
    assert SimCSEModel.from_pretrained(str(tiny_trainer_bert), pooler="cls", mlp_only_train=True).eval_pooler == \
        "cls_before_pooler"
    assert SimCSEModel.from_pretrained(str(tiny_trainer_bert), pooler="cls").eval_pooler == "cls"


def test_unused_pooler_layer_is_frozen(tiny_trainer_bert):
    m = SimCSEModel.from_pretrained(str(tiny_trainer_bert), pooler="avg")
    assert not any(p.requires_grad for p in m.encoder.pooler.parameters())
    assert all(p.requires_grad for n, p in m.encoder.named_parameters() if not n.startswith("pooler."))


def test_supervised_rows_without_hard_negative_are_masked_out(tiny_trainer_bert, tiny_nli, tokenizer):
    data = load_training_data([tiny_nli], "sup")
    assert data.num_sent == 3 and data.hard_neg[2] is None and data.hard_neg[6] is None
    batch = ContrastiveCollator(data, tokenizer, 32)(list(range(8)))
    assert batch["input_ids"].shape[:2] == (8, 3)
    assert batch["hard_negative_mask"].tolist() == [True, True, False, True, True, True, False, True]
    m = SimCSEModel.from_pretrained(str(tiny_trainer_bert), pooler="avg", dropout=0.0, hard_negative_weight=0.5).train()
    out = m(**batch)
    z = m.embed_views(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
    keep = batch["hard_negative_mask"]
    # independent computation: only present hard negatives as extra candidates, weight on each own one
    logits = torch.cat([torch.nn.functional.cosine_similarity(z[:, 0, None], z[None, :, 1], dim=-1),
                        torch.nn.functional.cosine_similarity(z[:, 0, None], z[None, keep, 2], dim=-1)], 1) / 0.05
    own = torch.nonzero(keep).flatten()
    logits[own, 8 + torch.arange(len(own))] += 0.5
    expected = torch.nn.functional.cross_entropy(logits, torch.arange(8))
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_pair_files_without_a_hard_negative_column_train(tmp_path, tiny_trainer_bert, tokenizer):
    f = tmp_path / "pairs.csv"
    f.write_text("sent0,sent1\nA man plays.,Someone plays music.\nA dog runs.,An animal moves.\n"
                 "Kids eat.,Children have lunch.\n", encoding="utf-8")
    data = load_training_data([f], "sup")
    batch = ContrastiveCollator(data, tokenizer, 32)([0, 1, 2])
    assert batch["input_ids"].shape[:2] == (3, 2)
    m = SimCSEModel.from_pretrained(str(tiny_trainer_bert), pooler="cls").train()
    assert torch.isfinite(m(**batch)["loss"])


def test_batches_depend_only_on_seed_and_rows(tiny_corpus, tokenizer):
    data = load_training_data([tiny_corpus], "unsup")
    a = ContrastiveCollator(data, tokenizer, 32, seed=3, mlm_probability=0.15)
    b = ContrastiveCollator(data, tokenizer, 32, seed=3, mlm_probability=0.15)
    torch.manual_seed(0)
    x = a([5, 1, 9])
    torch.manual_seed(123)  # the global RNG plays no part
    y = b([5, 1, 9])
    for k in x:
        assert torch.equal(x[k], y[k]), k
    z = ContrastiveCollator(data, tokenizer, 32, seed=4, mlm_probability=0.15)([5, 1, 9])
    assert not torch.equal(x["mlm_labels"], z["mlm_labels"])


def test_mlm_masks_only_ordinary_tokens(tiny_corpus, tokenizer):
    data = load_training_data([tiny_corpus], "unsup")
    batch = ContrastiveCollator(data, tokenizer, 32, mlm_probability=0.15)(list(range(16)))
    ids, labels = batch["input_ids"], batch["mlm_labels"]
    chosen = labels != -100
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    assert chosen.any() and not (chosen & special).any()
    assert torch.equal(labels[chosen], ids[chosen])
    ordinary = (~special).sum().item()
    assert 0.05 < chosen.sum().item() / ordinary < 0.3


def test_mlm_adds_its_weighted_loss(tiny_bert_mlm_dir, tiny_corpus):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_bert_mlm_dir))
    data = load_training_data([tiny_corpus], "unsup")
    batch = ContrastiveCollator(data, tok, 32, mlm_probability=0.15)(list(range(8)))
    with_mlm = SimCSEModel.from_pretrained(str(tiny_bert_mlm_dir), pooler="avg", dropout=0.0, do_mlm=True,
                                           mlm_weight=0.1).train()
    out = with_mlm(**batch)
    plain = with_mlm(**{k: v for k, v in batch.items() if not k.startswith("mlm_")})
    assert out["mlm_loss"].item() > 0
    assert out["loss"].item() == pytest.approx(plain["loss"].item() + 0.1 * out["mlm_loss"].item(), rel=1e-5)
    # the head is the checkpoint's, untied from the encoder being trained (as in the reference)
    decoder = with_mlm.lm_head.predictions.decoder.weight
    assert decoder.data_ptr() != with_mlm.encoder.embeddings.word_embeddings.weight.data_ptr()
    torch.testing.assert_close(decoder, with_mlm.encoder.embeddings.word_embeddings.weight)


def test_mlm_without_a_head_in_the_checkpoint_is_refused(tiny_trainer_bert):
    with pytest.raises(InputError, match="masked-LM head"):
        SimCSEModel.from_pretrained(str(tiny_trainer_bert), do_mlm=True)
