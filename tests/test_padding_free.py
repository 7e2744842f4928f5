"""The training speed-ups change no numbers: the padding-free forward (trainers.padding_free) against the
model's own forward, torch's fused AdamW against the for-loop one, and whole training runs with both
against runs with neither.

Tolerances (stated in the README's "Training speed" section):
* one forward: embeddings agree to 1e-5 relative (fp32; measured ~1e-7), parameter gradients to 1e-4
  relative (measured ~1e-7), and the random generator is left in the same state (same dropout masks);
* one AdamW step, fused vs for-loop: parameters agree to 1e-6 relative;
* a training run (tiny BERT, 6 steps, evaluation every 2): every recorded loss to 1e-4 relative, STS-B dev
  Spearman and alignment/uniformity to 1e-4 absolute, final weights to 1e-4 relative — except attention
  key biases, whose true gradient is zero (softmax ignores a shift of a row's scores) so that AdamW turns
  rounding noise into steps of size lr in any two runs: those agree to 2 × steps × lr absolute. A run
  with another seed is far outside these, so the comparison can fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from simcse_analysis.pooling import NEEDS_HIDDEN_STATES, POOLERS, pool
from trainers import padding_free as pf


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def _batch(tokenizer, sentences: list[str], max_length: int = 32) -> dict[str, torch.Tensor]:
    return dict(tokenizer(sentences, max_length=max_length, truncation=True, padding="longest", return_tensors="pt"))


@pytest.fixture(scope="module")
def sentences(data_dir) -> list[str]:
    lines = (data_dir / "unsup" / "wiki1m_for_simcse.head.txt").read_text(encoding="utf-8").splitlines()
    return [s for s in lines if s.strip()][:24]


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_path))


def _tiny(kind: str, vocab: int, dropout: float = 0.1, attn: str = "sdpa"):
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    common = {"vocab_size": vocab, "hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 4,
              "intermediate_size": 64, "hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout,
              "initializer_range": 0.3}
    torch.manual_seed(0)
    if kind == "bert":
        model = BertModel(BertConfig(max_position_embeddings=64, **common), add_pooling_layer=True)
    else:  # RoBERTa: its own position ids (offset by the padding index); pad id 0 = the BERT tokenizer's
        model = RobertaModel(RobertaConfig(max_position_embeddings=70, pad_token_id=0, bos_token_id=101,
                                           eos_token_id=102, **common))
    model.config._attn_implementation = attn
    return model.train()


def _run(model, batch, pooler: str, padding_free: bool, seed: int = 7):
    """Embeddings, all parameter gradients and the generator state after one forward + backward."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    if padding_free:
        out = pf.forward(model, batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"),
                         pooler=pooler)
    else:
        out = model(**batch, output_hidden_states=pooler in NEEDS_HIDDEN_STATES, return_dict=True)
    z = pool(pooler, out, batch["attention_mask"])
    (z.square().sum() + z.sum(0).pow(3).sum() * 1e-3).backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return z.detach(), grads, torch.get_rng_state()


@pytest.mark.parametrize("kind", ["bert", "roberta"])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("pooler", POOLERS)
def test_padding_free_forward_equals_the_models_own(kind, attn, pooler, tokenizer, sentences):
    model = _tiny(kind, len(tokenizer), attn=attn)
    assert pf.unsupported_reason(model) is None
    batch = _batch(tokenizer, sentences)
    assert not bool(batch["attention_mask"].all()), "the batch must have padding for this test to mean anything"
    z0, g0, rng0 = _run(model, batch, pooler, padding_free=False)
    z1, g1, rng1 = _run(model, batch, pooler, padding_free=True)
    assert _rel(z1, z0) < 1e-5
    assert g1.shape == g0.shape and _rel(g1, g0) < 1e-4
    assert torch.equal(rng0, rng1), "the padding-free forward must draw exactly the model's dropout masks"
    # and the dropout masks matter: another seed moves the embeddings far beyond the tolerance
    z2, _, _ = _run(model, batch, pooler, padding_free=True, seed=8)
    assert _rel(z2, z0) > 1e-3


def test_batch_without_padding_and_eval_mode_are_reproduced(tokenizer, sentences):
    model = _tiny("bert", len(tokenizer))
    long_enough = [s for s in sentences if len(tokenizer(s)["input_ids"]) >= 6]
    short = _batch(tokenizer, long_enough, max_length=6)  # every sentence is longer: no padding at all
    assert bool(short["attention_mask"].all())
    for mode in (model.train, model.eval):
        mode()
        z0, g0, _ = _run(model, short, "avg", padding_free=False)
        z1, g1, _ = _run(model, short, "avg", padding_free=True)
        assert _rel(z1, z0) < 1e-5 and _rel(g1, g0) < 1e-4


def test_bf16_autocast_draws_the_same_masks(tokenizer, sentences):
    model = _tiny("bert", len(tokenizer))
    batch = _batch(tokenizer, sentences)
    results = []
    for flag in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            results.append(_run(model, batch, "cls_before_pooler", padding_free=flag))
    (z0, _, rng0), (z1, _, rng1) = results
    assert torch.equal(rng0, rng1)
    assert _rel(z1.float(), z0.float()) < 2e-2  # bf16 rounding of differently ordered sums


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("p", [0.1, 0.3])
def test_cpu_dropout_scale_is_bitwise_torchs_dropout(dtype, p):
    shape = (37, 19)
    torch.manual_seed(3)
    ref = F.dropout(torch.ones(shape, dtype=dtype), p, True)
    after_ref = torch.get_rng_state()
    torch.manual_seed(3)
    mine = pf._dropout_scale(shape, p, torch.empty(0, dtype=dtype))
    assert mine.dtype == dtype and torch.equal(mine, ref)
    assert torch.equal(torch.get_rng_state(), after_ref)


def test_unsupported_encoders_and_left_padding_use_the_models_forward(tokenizer, sentences, monkeypatch):
    from transformers import DistilBertConfig, DistilBertModel

    from trainers.model import SimCSEModel

    distil = DistilBertModel(DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2,
                                              hidden_dim=64))
    assert "distilbert" in pf.unsupported_reason(distil)
    bert = _tiny("bert", len(tokenizer))
    bert.gradient_checkpointing = True
    assert "gradient checkpointing" in pf.unsupported_reason(bert)
    bert.gradient_checkpointing = False
    batch = _batch(tokenizer, sentences)
    left = batch["attention_mask"].flip(1)  # left padding: [CLS] is not at position 0 everywhere
    assert not pf.applicable(bert, left) and pf.applicable(bert, batch["attention_mask"])

    def must_not_run(*args, **kwargs):
        raise AssertionError("the padding-free forward ran for an encoder it does not support")

    monkeypatch.setattr(pf, "forward", must_not_run)
    SimCSEModel(distil, pooler="avg").embed(batch["input_ids"], batch["attention_mask"])


def test_fused_adamw_is_the_default_and_updates_as_the_for_loop_one():
    from trainers.loop import adamw_implementation

    assert adamw_implementation("cpu") == "adamw_torch_fused"  # torch >= 2.4 has a fused CPU kernel
    torch.manual_seed(0)
    params = [torch.randn(50, 8), torch.randn(8)]
    copies = {name: [p.clone().requires_grad_() for p in params] for name in ("loop", "fused")}
    opts = {"loop": torch.optim.AdamW(copies["loop"], lr=3e-3, foreach=False),
            "fused": torch.optim.AdamW(copies["fused"], lr=3e-3, fused=True)}
    for step in range(5):
        g = [torch.randn_like(p) for p in params]
        for name, opt in opts.items():
            for p, gi in zip(copies[name], g):
                p.grad = gi.clone()
            opt.step()
    for a, b in zip(copies["fused"], copies["loop"]):
        assert _rel(a.detach(), b.detach()) < 1e-6
    assert _rel(copies["fused"][0].detach(), params[0]) > 1e-3  # and they did move


LR = 3e-5


def _train(tiny_trainer_bert, tiny_corpus, data_dir, out, *, fast: bool, seed: int = 42, monkeypatch=None):
    from trainers import loop
    from trainers.config import TrainConfig

    cfg = TrainConfig("unsup", str(tiny_trainer_bert), [str(tiny_corpus)], str(out), batch_size=16, max_steps=6,
                      eval_steps=2, learning_rate=LR, data_dir=str(data_dir), seed=seed, padding_free=fast, pooler="cls")
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(loop, "adamw_implementation", lambda device: "adamw_torch")
        return loop.train(cfg, progress=False)


def test_training_trajectory_is_unchanged_by_the_speed_ups(tiny_trainer_bert, tiny_corpus, data_dir, tmp_path,
                                                            monkeypatch):
    from safetensors.torch import load_file

    slow = _train(tiny_trainer_bert, tiny_corpus, data_dir, tmp_path / "slow", fast=False, monkeypatch=monkeypatch)
    fast = _train(tiny_trainer_bert, tiny_corpus, data_dir, tmp_path / "fast", fast=True, monkeypatch=monkeypatch)
    other = _train(tiny_trainer_bert, tiny_corpus, data_dir, tmp_path / "seed", fast=True, seed=43,
                   monkeypatch=monkeypatch)
    run = json.loads((tmp_path / "fast" / "run.json").read_text())
    assert run["resolved"]["optimizer"] == "adamw_torch_fused" and run["resolved"]["padding_free"] == "on"
    assert json.loads((tmp_path / "slow" / "run.json").read_text())["resolved"]["optimizer"] == "adamw_torch"

    def close(a, b) -> bool:
        if [e["step"] for e in a.trajectory] != [e["step"] for e in b.trajectory]:
            return False
        for x, y in zip(a.trajectory, b.trajectory):
            if x["loss"] is not None and abs(x["loss"] - y["loss"]) > 1e-4 * abs(y["loss"]):
                return False
            if any(abs(x[k] - y[k]) > 1e-4 for k in ("alignment", "uniformity")):
                return False
            # Spearman × 100 of a tiny random model: its dev cosines crowd near 1, so fp32 rounding reorders
            # near-ties (torch 2.6: 6.96387 vs 6.96417 at step 6 with losses equal to 2e-7 and weights to 6e-6)
            if abs(x["stsb_spearman"] - y["stsb_spearman"]) > 1e-3:
                return False
        wa, wb = (load_file(str(Path(r.last_dir) / "model.safetensors")) for r in (a, b))
        for k in wb:
            if k.endswith("attention.self.key.bias"):
                # its true gradient is 0 (softmax ignores a shift of a row's scores), so AdamW turns each run's
                # rounding noise into steps of size lr: the two agree to steps × lr, not relatively
                if float((wa[k] - wb[k]).abs().max()) > 6 * 2 * LR:
                    return False
            elif _rel(wa[k].float(), wb[k].float()) > 1e-4:
                return False
        return True

    assert len(slow.trajectory) == 4
    assert close(fast, slow)
    assert not close(other, slow)


def test_switching_the_padding_free_forward_keeps_the_run_resumable():
    """--no-padding-free changes how, not what, is trained: a run directory resumes across the switch."""
    from trainers.config import TrainConfig

    on = TrainConfig("unsup", "m", ["f"], "o")
    off = TrainConfig("unsup", "m", ["f"], "o", padding_free=False)
    assert on.padding_free and on.identity() == off.identity()
    assert TrainConfig.from_dict({k: v for k, v in off.to_dict().items() if k != "padding_free"}).padding_free


# ---------------------------------------------------------------------------------------------------------
# The next transformers release, simulated. Each change below is made consistently — the model's own forward
# keeps working with it, as a real release's would — and must end in a completed run whose losses equal the
# --no-padding-free run of the same seed: either padding-free is unaffected (it reads nothing the change
# touched) or its first-batch self-check notices, prints one warning and falls back to the model's forward.

def _called_from_modeling_bert() -> bool:
    """Whether the caller of the caller is transformers' own BERT code (the model's own, updated call)."""
    import sys

    from transformers.models.bert import modeling_bert

    return sys._getframe(2).f_code.co_filename == modeling_bert.__file__


def _private_mask_helper_changed(m) -> None:
    """5.25-style: the private mask helper gains a parameter; only the model's own (updated) call passes it."""
    from transformers.models.bert.modeling_bert import BertModel

    original = BertModel._create_attention_masks

    def changed(self, *args, **kwargs):
        if not _called_from_modeling_bert():
            raise TypeError("BertModel._create_attention_masks() missing 1 required positional argument: 'new_arg'")
        return original(self, *args, **kwargs)

    m.setattr(BertModel, "_create_attention_masks", changed)


def _attention_interface_changed(m) -> None:
    """The attention functions' signature changes (a renamed keyword, say); the model's call is updated."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    original = ALL_ATTENTION_FUNCTIONS["sdpa"]

    def changed(*args, **kwargs):
        if not _called_from_modeling_bert():
            raise TypeError("sdpa_attention_forward() got an unexpected keyword argument 'scaling'")
        return original(*args, **kwargs)

    m.setitem(ALL_ATTENTION_FUNCTIONS._global_mapping, "sdpa", changed)


def _residual_scaled(m) -> None:
    """A layer's forward computes something else: BertSelfOutput scales its residual."""
    from transformers.models.bert.modeling_bert import BertSelfOutput

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.dropout(self.dense(hidden_states))
        return self.LayerNorm(hidden_states + 1.5 * input_tensor)

    m.setattr(BertSelfOutput, "forward", forward)


def _submodule_renamed(m) -> None:
    """A submodule moves: BertIntermediate's activation is now ``act``."""
    from transformers.models.bert.modeling_bert import BertIntermediate

    init = BertIntermediate.__init__

    def __init__(self, config):
        init(self, config)
        self.act = self.intermediate_act_fn
        del self.intermediate_act_fn

    def forward(self, hidden_states):
        return self.act(self.dense(hidden_states))

    m.setattr(BertIntermediate, "__init__", __init__)
    m.setattr(BertIntermediate, "forward", forward)


@pytest.mark.parametrize("release, falls_back, reason", [
    (_private_mask_helper_changed, False, None),
    (_attention_interface_changed, True, "failed (TypeError: sdpa_attention_forward() got an unexpected"),
    (_residual_scaled, True, "differ from the model's own forward by"),
    (_submodule_renamed, True, "not supported for a layer without intermediate.intermediate_act_fn"),
])
def test_a_changed_transformers_release_never_trains_something_else(release, falls_back, reason, tiny_trainer_bert,
                                                                    tiny_corpus, data_dir, tmp_path, monkeypatch,
                                                                    capfd):
    from trainers import loop
    from trainers.config import TrainConfig

    def run(out: str, fast: bool):
        cfg = TrainConfig("unsup", str(tiny_trainer_bert), [str(tiny_corpus)], str(tmp_path / out), batch_size=16,
                          max_steps=3, eval_steps=3, learning_rate=LR, data_dir=str(data_dir), seed=42,
                          padding_free=fast, pooler="cls")
        return loop.train(cfg, progress=False)

    with monkeypatch.context() as m:
        release(m)
        capfd.readouterr()
        fast = run("fast", True)
        warnings = [line for line in capfd.readouterr().err.splitlines() if line.startswith("warning: padding-free")]
        slow = run("slow", False)
    note = json.loads((tmp_path / "fast" / "run.json").read_text())["resolved"]["padding_free"]
    losses = [e["loss"] for e in fast.trajectory]
    assert losses[-1] is not None and len(losses) == len(slow.trajectory)
    if falls_back:
        assert len(warnings) == 1 and reason in warnings[0], warnings
        assert note.startswith("off: ") and reason in note
        assert losses == [e["loss"] for e in slow.trajectory]  # the model's own forward: the very same numbers
    else:
        assert warnings == [] and note == "on"
        assert all(abs(a - b) <= 1e-4 * abs(b) for a, b in zip(losses[1:], [e["loss"] for e in slow.trajectory][1:]))


def test_the_self_check_accepts_bf16_rounding_and_draws_no_random_numbers(tokenizer, sentences):
    model = _tiny("bert", len(tokenizer))
    batch = _batch(tokenizer, sentences)
    before = torch.get_rng_state()
    for autocast in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            verdict = pf.verify(model, batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"),
                                pooler="cls_before_pooler")
        assert verdict.on, verdict.note
        assert verdict.tolerance == (pf.tolerance(torch.bfloat16) if autocast else 1e-5)
        assert verdict.max_relative_difference <= verdict.tolerance
    assert torch.equal(torch.get_rng_state(), before) and model.training


def test_padding_free_calls_no_private_function_of_transformers(tokenizer, sentences):
    """Every function of transformers that padding-free's own code calls is public (the attention functions the
    model registers, the embedding and pooler modules); ``config._attn_implementation`` is the one private
    name read (README: "Where the code reaches into a dependency"), and the self-check guards it."""
    import sys

    import transformers

    root = Path(transformers.__file__).parent
    ours = pf.__file__
    called: set[str] = set()

    def profile(frame, event, arg):
        if event == "call" and frame.f_back is not None and frame.f_back.f_code.co_filename == ours:
            code = frame.f_code
            if code.co_filename.startswith(str(root)):
                called.add(code.co_name)

    model = _tiny("bert", len(tokenizer))
    batch = _batch(tokenizer, sentences)
    sys.setprofile(profile)
    try:
        pf.forward(model, batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"), pooler="avg")
    finally:
        sys.setprofile(None)
    private = {name for name in called if name.startswith("_") and not name.startswith("__")}
    assert called and private <= {"_attn_implementation"}, private


