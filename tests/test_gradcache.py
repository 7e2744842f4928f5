"""Gradient caching (--mini-batch-size): one step's parameter gradient equals the full-batch gradient, with the
same dropout masks replayed, in one process and in two (gloo); bad settings are refused; accumulation warns."""

from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp

from trainers.config import TrainConfig

ROWS = list(range(12))


def _batch(model_dir: str, data: str, objective: str, rows: list[int]) -> dict:
    from transformers import AutoTokenizer

    from trainers.data import ContrastiveCollator, load_training_data

    tok = AutoTokenizer.from_pretrained(model_dir)
    return ContrastiveCollator(load_training_data([data], objective), tok, 32)(rows)


def _model(model_dir: str, dropout: float, mini: int | None):
    from trainers.model import SimCSEModel

    return SimCSEModel.from_pretrained(model_dir, pooler="cls", dropout=dropout, seed=0, hard_negative_weight=0.3,
                                       mini_batch_size=mini).train()


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _step(model_dir: str, batch: dict, *, dropout: float, mini: int | None, seed: int = 0):
    model = _model(model_dir, dropout, mini)
    torch.manual_seed(seed)
    out = model(**batch)
    out["loss"].backward()
    return out, _grads(model)


def _assert_same_gradient(got: dict, expected: dict, rel: float = 1e-5) -> None:
    """Relative error ‖got − expected‖ / ‖expected‖ ≤ rel for the whole gradient and for each parameter, except
    the attention key biases: softmax is invariant to them, so their true gradient is 0 and what is there is
    float noise (~1e-8 of the total), which is checked to be that small instead."""
    assert set(got) == set(expected)
    total = torch.cat([g.flatten() for g in expected.values()])
    diff = torch.cat([(got[n] - g).flatten() for n, g in expected.items()])
    assert float(diff.norm() / total.norm()) <= rel
    for name, g in expected.items():
        if name.endswith("attention.self.key.bias"):
            assert float(got[name].norm()) < 1e-6 * float(total.norm()), name
            continue
        err = float((got[name] - g).norm() / g.norm())
        assert err <= rel, f"{name}: relative error {err:.2e}"


@pytest.fixture(params=["unsup", "sup"])
def case(request, tiny_corpus, tiny_nli):
    """Unsupervised pairs, or supervised triplets with hard negatives (two of them missing)."""
    return request.param, str(tiny_corpus if request.param == "unsup" else tiny_nli)


@pytest.mark.parametrize("mini", [3, 4, 11])
def test_cached_gradient_equals_the_full_batch_gradient(tiny_trainer_bert, case, mini):
    objective, data = case
    batch = _batch(str(tiny_trainer_bert), data, objective, ROWS)
    if objective == "sup":
        assert batch["input_ids"].shape[1] == 3 and not batch["hard_negative_mask"].all()
    full, expected = _step(str(tiny_trainer_bert), batch, dropout=0.0, mini=None)
    cached, got = _step(str(tiny_trainer_bert), batch, dropout=0.0, mini=mini)
    assert cached["reported_loss"].item() == pytest.approx(full["reported_loss"].item(), rel=1e-6)
    torch.testing.assert_close(cached["logits"], full["logits"].detach(), rtol=1e-5, atol=1e-6)
    _assert_same_gradient(got, expected)


def test_replay_draws_the_dropout_masks_of_the_representation_pass(tiny_trainer_bert, tiny_corpus):
    """With dropout, the cached step equals a step whose graph is built chunk by chunk from the same seed (the
    masks of the no-grad pass are replayed exactly); a different seed gives a different gradient."""
    model_dir = str(tiny_trainer_bert)
    batch = _batch(model_dir, str(tiny_corpus), "unsup", ROWS)
    _, got = _step(model_dir, batch, dropout=0.1, mini=4, seed=7)

    def chunked_with_graph(seed: int) -> dict:
        model = _model(model_dir, 0.1, None)
        torch.manual_seed(seed)
        z = torch.cat([model.embed_views(batch["input_ids"][i:i + 4], batch["attention_mask"][i:i + 4],
                                         batch["token_type_ids"][i:i + 4]) for i in range(0, 12, 4)])
        model.loss_of_views(z)[0].backward()
        return _grads(model)

    _assert_same_gradient(got, chunked_with_graph(7))
    other = chunked_with_graph(8)
    assert any(not torch.allclose(other[n], got[n], rtol=1e-3) for n in got)


def test_replay_under_bf16_autocast_reuses_the_forward_precision(tiny_trainer_bert, tiny_corpus):
    """Mixed precision: the replay runs from backward, outside the Trainer's autocast; it re-enters bf16 autocast,
    so every re-encoded chunk has the dtype of the representation pass (bf16)."""
    model_dir = str(tiny_trainer_bert)
    batch = _batch(model_dir, str(tiny_corpus), "unsup", ROWS)
    cached = _model(model_dir, 0.1, 4)
    dtypes: list[torch.dtype] = []
    embed_views = cached.embed_views

    def recording(*args, **kwargs):
        z = embed_views(*args, **kwargs)
        dtypes.append(z.dtype)
        return z

    cached.embed_views = recording
    torch.manual_seed(5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = cached(**batch)
    out["loss"].backward()  # outside autocast, as the Trainer does
    assert dtypes == [torch.bfloat16] * 6  # 3 chunks encoded, then 3 replayed
    assert all(p.grad is not None for p in cached.encoder.encoder.parameters())


def _worker(rank: int, world: int, model_dir: str, data: str, objective: str, init_file: str, out_file: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        share = len(ROWS) // world
        batch = _batch(model_dir, data, objective, ROWS[rank * share:(rank + 1) * share])
        model = _model(model_dir, 0.0, 2)  # 3 chunks of 2 rows per process
        ddp = DistributedDataParallel(model)  # kept alive until after backward: its reducer averages the gradients
        out = ddp(**batch)
        out["loss"].backward()
        if rank == 0:
            torch.save({"loss": out["reported_loss"], "grads": _grads(model)}, out_file)
    finally:
        dist.destroy_process_group()


def test_two_processes_with_gradient_caching_match_the_reference_update(tmp_path, tiny_trainer_bert, case):
    """Negatives gathered across 2 processes, each caching its 6 rows in chunks of 2: after DDP averaging the
    gradient is the single-process full-batch gradient / 2 (the reference's update, the default)."""
    objective, data = case
    model_dir = str(tiny_trainer_bert)
    out_file = tmp_path / "rank0.pt"
    mp.spawn(_worker, args=(2, model_dir, data, objective, str(tmp_path / "init"), str(out_file)), nprocs=2,
             join=True)
    got = torch.load(out_file)
    full, expected = _step(model_dir, _batch(model_dir, data, objective, ROWS), dropout=0.0, mini=None)
    assert got["loss"].item() == pytest.approx(full["reported_loss"].item(), rel=1e-5)
    _assert_same_gradient(got["grads"], {n: g / 2 for n, g in expected.items()})


def test_trainer_with_gradient_caching_follows_the_full_batch_trajectory(tmp_path, tiny_trainer_bert, tiny_corpus,
                                                                         small_data_dir):
    from trainers.loop import train

    def run(name: str, mini: int | None):
        return train(TrainConfig("unsup", str(tiny_trainer_bert), [str(tiny_corpus)], str(tmp_path / name),
                                 batch_size=16, max_steps=2, eval_steps=1, dropout=0.0, learning_rate=1e-3,
                                 eval_at_start=False, mini_batch_size=mini, data_dir=str(small_data_dir)),
                     progress=False)

    plain, cached = run("plain", None), run("cached", 4)
    assert [e["step"] for e in cached.trajectory] == [1, 2]
    for a, b in zip(cached.trajectory, plain.trajectory):
        for key in ("loss", "stsb_spearman", "alignment", "uniformity"):
            assert a[key] == pytest.approx(b[key], rel=1e-4), key


def test_gradient_accumulation_warns_that_it_shrinks_the_negatives(tmp_path, tiny_trainer_bert, tiny_corpus,
                                                                   small_data_dir):
    from trainers.loop import train

    cfg = TrainConfig("unsup", str(tiny_trainer_bert), [str(tiny_corpus)], str(tmp_path / "acc"), batch_size=16,
                      gradient_accumulation_steps=2, max_steps=1, eval_at_start=False,
                      data_dir=str(small_data_dir))
    with pytest.warns(UserWarning, match=r"only sees its own 8 rows.*--mini-batch-size 8"):
        train(cfg, progress=False)


@pytest.mark.parametrize("args, needle", [
    (["--batch-size", "16", "--mini-batch-size", "32"], "--mini-batch-size 32 must divide --batch-size 16"),
    (["--batch-size", "16", "--mini-batch-size", "5"], "--mini-batch-size 5 must divide --batch-size 16"),
    (["--batch-size", "16", "--grad-accum", "2", "--mini-batch-size", "16"], "must divide the per-process batch"),
    (["--batch-size", "16", "--precision", "fp16", "--device", "cpu"], "--precision fp16 needs a CUDA GPU"),
])
def test_bad_gradient_caching_settings_exit_2(tmp_path, tiny_trainer_bert, tiny_corpus, small_data_dir, run_cli,
                                              args, needle):
    code, _, err = run_cli("train", "unsup", "--model", tiny_trainer_bert, "--train-file", tiny_corpus, "--out",
                           tmp_path / "run", "--data-dir", small_data_dir, "--quiet", *args)
    assert code == 2 and err.startswith("error: ") and needle in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_mlm_and_gradient_caching_are_refused_together():
    from simcse_analysis.errors import InputError

    with pytest.raises(InputError, match="cannot be combined with --do-mlm"):
        TrainConfig("unsup", "m", ["f.txt"], "o", batch_size=8, mini_batch_size=4, do_mlm=True).resolved()
