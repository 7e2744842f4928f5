"""A sentence-transformers checkpoint is analysed as the model computes it, or not by default: a pipeline with a
part this package does not compute (a Dense projection, max pooling) would otherwise be silently mis-scored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from simcse_analysis.checkpoint import default_pooler, sentence_transformers_unreproduced


def _copy(minilm_path: Path, out: Path, modules: list[dict], pooling: dict | None = None) -> Path:
    shutil.copytree(minilm_path, out, ignore=shutil.ignore_patterns("*.onnx", "onnx", "openvino", "*.h5"))
    (out / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    if pooling is not None:
        (out / "1_Pooling" / "config.json").write_text(json.dumps(pooling), encoding="utf-8")
    return out


TRANSFORMER = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
POOLING = {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
NORMALIZE = {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
DENSE = {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}


def test_minilm_mean_pooling_and_normalize_are_computed_here(minilm_path):
    assert sentence_transformers_unreproduced(minilm_path) == []
    assert default_pooler(minilm_path) == "avg"


@pytest.mark.parametrize("modules, pooling, named", [
    ([TRANSFORMER, POOLING, DENSE], None, "2_Dense (Dense)"),
    ([TRANSFORMER, POOLING, NORMALIZE], {"pooling_mode_max_tokens": True}, "1_Pooling (max_tokens pooling)"),
    ([TRANSFORMER, POOLING], {"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": True},
     "1_Pooling (cls_token + mean_tokens pooling)"),
])
def test_a_pipeline_this_package_does_not_compute_needs_an_explicit_pooler(modules, pooling, named, minilm_path,
                                                                          tmp_path, run_cli, small_data_dir):
    ckpt = _copy(minilm_path, tmp_path / "st", modules, pooling)
    assert named in sentence_transformers_unreproduced(ckpt)
    code, out, err = run_cli("eval", ckpt, "--tasks", "STSBenchmark", "--data-dir", small_data_dir, "--no-cache")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and named in err and "--pooler" in err
    assert out == ""
    code, out, err = run_cli("eval", f"{ckpt}@avg", "--tasks", "STSBenchmark", "--data-dir", small_data_dir,
                             "--no-cache")
    assert code == 0, err
    assert "STSBenchmark" in out
