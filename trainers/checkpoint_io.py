"""Saving a trained encoder so that every tool reads it the same way.

A checkpoint directory holds

* the encoder (``config.json`` + ``model.safetensors``): ``AutoModel.from_pretrained(dir)`` loads it;
  for the ``cls`` pooler the trained MLP sits in the model's pooler layer;
* its tokenizer files;
* ``simcse_analysis.json``: pooler, evaluation max length, training settings, data files and their
  SHA-256, step, seed, package version (what ``load_encoder`` reads for its defaults);
* sentence-transformers module files (``modules.json``, ``sentence_bert_config.json``,
  ``1_Pooling/config.json`` and, for ``cls``, ``2_Dense`` = the MLP with tanh), so that
  ``SentenceTransformer(dir).encode`` returns the same vectors as ``simcse-analyze``. The layer-mixing
  poolers (``avg_first_last``, ``avg_emb_last``, ``avg_top2``) have no sentence-transformers module; for them these
  files are left out and the metadata says so.

Directories are written beside the target and swapped in (:func:`replace_dir`), so a reader — or a
run killed mid-save — never sees a half-written checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from simcse_analysis.checkpoint import METADATA_FILE
from simcse_analysis.io_utils import atomic_write_text

#: Poolers that sentence-transformers can express (Pooling [+ Dense]).
ST_POOLERS = ("cls", "cls_before_pooler", "avg")


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def write_sentence_transformers_files(out: Path, *, pooler: str, hidden_size: int, max_length: int,
                                      mlp: torch.nn.Linear | None = None) -> bool:
    """Write the sentence-transformers module files for ``pooler``; ``False`` if it has no equivalent.

    ``cls_before_pooler`` → CLS-token pooling; ``avg`` → mean pooling; ``cls`` → CLS-token pooling then
    ``Dense(tanh)`` holding ``mlp``'s weights (the pooler layer).
    """
    if pooler not in ST_POOLERS:
        return False
    out = Path(out)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    _write_json(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": int(hidden_size),
        "pooling_mode_cls_token": pooler != "avg",
        "pooling_mode_mean_tokens": pooler == "avg",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    })
    if pooler == "cls":
        if mlp is None:
            raise ValueError("pooler 'cls' needs the MLP (pooler dense layer) weights")
        from safetensors.torch import save_file

        modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
        _write_json(out / "2_Dense" / "config.json", {
            "in_features": int(mlp.in_features), "out_features": int(mlp.out_features), "bias": True,
            "activation_function": "torch.nn.modules.activation.Tanh"})
        save_file({"linear.weight": mlp.weight.detach().float().cpu().contiguous(),
                   "linear.bias": mlp.bias.detach().float().cpu().contiguous()},
                  str(out / "2_Dense" / "model.safetensors"))
    _write_json(out / "modules.json", modules)
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": int(max_length), "do_lower_case": False})
    _write_json(out / "config_sentence_transformers.json", {"similarity_fn_name": "cosine"})
    return True


def save_checkpoint(encoder: torch.nn.Module, tokenizer: Any, out: str | os.PathLike[str], *, pooler: str,
                    max_length: int, metadata: dict[str, Any]) -> Path:
    """Write encoder, tokenizer, sentence-transformers files and metadata to ``out``, atomically.

    ``metadata`` is stored in ``simcse_analysis.json`` together with ``pooler`` and ``max_length`` (the
    evaluation defaults ``load_encoder`` picks up) and ``sentence_transformers`` (whether the module
    files were written).
    """
    out = real_target(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        encoder.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        mlp = getattr(getattr(encoder, "pooler", None), "dense", None) if pooler == "cls" else None
        st = write_sentence_transformers_files(tmp, pooler=pooler, hidden_size=encoder.config.hidden_size,
                                               max_length=max_length, mlp=mlp)
        meta = {"pooler": pooler, "max_length": int(max_length), "sentence_transformers": st, **metadata}
        _write_json(tmp / METADATA_FILE, meta)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def real_target(out: str | os.PathLike[str]) -> Path:
    """Where writing directory ``out`` lands: a symlink's target (the link is kept and its target replaced, as
    for output files), else ``out``. Build the new directory beside this path, on the target's file system."""
    p = Path(out)
    return Path(os.path.realpath(p)) if p.is_symlink() else p


def _old_name(target: Path) -> Path:
    return target.parent / f".{target.name}.old"


def _remove(p: Path) -> None:
    """Delete a directory tree, or just the link when ``p`` is a symlink (never what it points to)."""
    if p.is_symlink() or p.is_file():
        p.unlink()
    else:
        shutil.rmtree(p)


def replace_dir(src: Path, target: Path) -> None:
    """Move directory ``src`` to ``target``, replacing it; at every instant either the old or the new
    ``target`` is complete (the old one waits at ``.NAME.old`` during the swap, see :func:`recover_dir`).
    A symlinked ``target`` keeps its link: its target directory is replaced (:func:`real_target`)."""
    src, target = Path(src), real_target(target)
    old = _old_name(target)
    if old.is_symlink() or old.exists():
        if target.exists():
            _remove(old)
        else:
            os.replace(old, target)  # a previous swap was interrupted: restore first
    if target.exists():
        os.replace(target, old)
    os.replace(src, target)
    with contextlib.suppress(OSError):
        _remove(old)


def recover_dir(target: Path) -> None:
    """Undo an interrupted :func:`replace_dir` and remove temporary siblings of ``target``."""
    target = real_target(target)
    old = _old_name(target)
    if old.is_symlink() or old.exists():
        if target.exists():
            with contextlib.suppress(OSError):
                _remove(old)
        else:
            os.replace(old, target)
    for tmp in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
