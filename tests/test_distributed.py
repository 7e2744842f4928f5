"""In-batch negatives across processes: 2 CPU processes (gloo) compute the loss of the global batch, exactly as
one process does on the whole batch; after data-parallel averaging the gradient is the reference's (the global
gradient / number of processes) by default, or exactly the global gradient with ``cross_process_gradient="global"``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from trainers.config import TrainConfig

ROWS = list(range(12))  # the global batch: rank r takes rows 6r … 6r+5


def _batch(model_dir: str, corpus: str, rows: list[int]) -> dict:
    from transformers import AutoTokenizer

    from trainers.data import ContrastiveCollator, load_training_data

    tok = AutoTokenizer.from_pretrained(model_dir)
    return ContrastiveCollator(load_training_data([corpus], "unsup"), tok, 32)(rows)


def _model(model_dir: str, mode: str = "average"):
    from trainers.model import SimCSEModel

    return SimCSEModel.from_pretrained(model_dir, pooler="cls", dropout=0.0, seed=0,
                                       cross_process_gradient=mode).train()


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _worker(rank: int, world: int, model_dir: str, corpus: str, init_file: str, out_file: str,
            mode: str = "average") -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = _model(model_dir, mode)
        ddp = DistributedDataParallel(model)
        share = len(ROWS) // world
        out = ddp(**_batch(model_dir, corpus, ROWS[rank * share:(rank + 1) * share]))
        out["loss"].backward()
        if rank == 0:
            torch.save({"loss": out["reported_loss"], "logits": out["logits"].detach(), "grads": _grads(model)},
                       out_file)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("mode, factor", [("average", 0.5), ("global", 1.0)])
def test_two_processes_compute_the_global_batch_loss_and_gradient(tmp_path, tiny_trainer_bert, tiny_corpus, mode,
                                                                  factor):
    """Default (the reference, princeton-nlp/SimCSE: no rescaling, DDP averages): the update is the global-batch
    gradient / 2, which max_grad_norm then clips; "global": exactly the single-process gradient."""
    model_dir, corpus = str(tiny_trainer_bert), str(tiny_corpus)
    out_file = tmp_path / "rank0.pt"
    mp.spawn(_worker, args=(2, model_dir, corpus, str(tmp_path / "init"), str(out_file), mode), nprocs=2, join=True)
    got = torch.load(out_file)

    single = _model(model_dir)
    out = single(**_batch(model_dir, corpus, ROWS))  # one process, whole batch, no process group
    out["loss"].backward()
    assert got["logits"].shape == (12, 12)  # each process scores against all 12 in-batch candidates
    assert got["loss"].item() == pytest.approx(out["loss"].item(), rel=1e-5)
    expected = _grads(single)
    assert set(got["grads"]) == set(expected)
    for name, g in expected.items():
        torch.testing.assert_close(got["grads"][name], g * factor, rtol=1e-4, atol=1e-6, msg=name)


def test_trainer_under_torchrun_follows_the_single_process_trajectory(tmp_path, tiny_trainer_bert, tiny_corpus,
                                                                      small_data_dir):
    """The full Trainer path: `torchrun --nproc-per-node 2 simcse-analyze train …` with batch 16 (8 per process)
    takes the same steps as one process with batch 16 (dropout 0, so both runs are deterministic), with the gradient
    rescaled to the global batch's (--cross-process-gradient global). Rank 1 starts 3 s late: only the main process
    reads and locks the output directory and the other follows its decision (every rank used to decide for itself,
    so a slow rank 1 saw rank 0's fresh run.json and stopped with "already holds a training run (running)")."""
    from trainers.loop import train

    def config(out: Path) -> TrainConfig:
        return TrainConfig("unsup", str(tiny_trainer_bert), [str(tiny_corpus)], str(out), batch_size=16,
                           max_steps=2, eval_steps=1, dropout=0.0, learning_rate=1e-3, eval_at_start=False,
                           data_dir=str(small_data_dir), cross_process_gradient="global")

    single = train(config(tmp_path / "single"), progress=False)
    cfg = config(tmp_path / "ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "SIMCSE_TEST_SLOW_RANK": "1:3"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(Path(__file__).with_name("cli_driver.py")), "train", *cfg.cli_args(), "--quiet"]
    # own session, so that a hang is cleaned up with every worker torchrun started
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[1], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("torchrun did not finish within 600 s")
    assert proc.returncode == 0, stderr[-3000:]
    run = json.loads(Path(cfg.output_dir, "run.json").read_text())
    assert run["world_size"] == 2 and run["status"] == "finished"
    ddp = [json.loads(line) for line in Path(cfg.output_dir, "trajectory.jsonl").read_text().splitlines()]
    assert [e["step"] for e in ddp] == [e["step"] for e in single.trajectory] == [1, 2]
    for a, b in zip(ddp, single.trajectory):
        for key in ("loss", "alignment", "uniformity", "stsb_spearman"):
            assert a[key] == pytest.approx(b[key], rel=1e-3), key
    from safetensors.torch import load_file

    w_ddp, w_single = (load_file(str(Path(d, "last", "model.safetensors"))) for d in (cfg.output_dir, single.output_dir))
    assert set(w_ddp) == set(w_single)
    for name in w_single:
        if name.endswith("attention.self.key.bias"):
            # softmax is invariant to this bias, so its true gradient is 0 and Adam's step (≈ lr·sign(g))
            # follows float noise, which differs between the two reduction orders
            continue
        torch.testing.assert_close(w_ddp[name], w_single[name], rtol=1e-4, atol=1e-5, msg=name)
