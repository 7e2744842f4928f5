"""Post-processing baselines as checkpoints: a map fitted on a corpus's embeddings, applied at encoding time.

Whitening (:mod:`trainers.whitening`), all-but-the-top (:mod:`trainers.abtt`) and BERT-flow
(:mod:`trainers.flow`) share one recipe, implemented here once:

1. read the corpus (:func:`sample_corpus`; optionally a seeded uniform sample);
2. encode it with the frozen base checkpoint (its pooler and max length unless given);
3. fit the map (the baseline's ``fit`` function) → a :class:`PostTransform`;
4. write a checkpoint directory (:func:`save_post_processed_checkpoint`): the base model's files
   (hard-linked when possible), the map's tensors, and ``simcse_analysis.json`` declaring
   ``post_transform`` (``{"type": "affine" | "flow", "file": …}``) and ``baseline``, so every command
   loads it like any checkpoint (:func:`simcse_analysis.encoder.load_encoder`). An affine map
   ``x ↦ (x − μ) M`` also gets sentence-transformers module files (a final ``Dense`` with weight ``Mᵀ``
   and bias ``−μM``) where the pooler has an equivalent, so ``SentenceTransformer(dir)`` returns the same
   vectors.

Everything the user can get wrong (corpus, model, output directory) is checked before ``out`` is written;
the directory is built beside ``out`` and swapped in.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from simcse_analysis.errors import InputError
from simcse_analysis.io_utils import check_writable_dir, write_error
from simcse_analysis.path_safety import check_apart

# Files of the base directory that are not copied: they describe the base (its sentence-transformers
# pipeline, its metadata, its model card), not the post-processed model, and are rewritten where needed.
_NOT_COPIED = {"modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "README.md",
               ".gitattributes"}


class PostTransform(Protocol):
    """A fitted post-processing map, as the checkpoint writer needs it."""

    #: ``simcse_analysis.json`` ``baseline`` value (``whitening``, ``abtt``, ``flow``).
    baseline: str

    def files(self) -> dict[str, dict[str, np.ndarray]]:
        """``{file name: {tensor name: array}}`` written as safetensors into the checkpoint."""
        ...

    def spec(self) -> dict[str, Any]:
        """The ``post_transform`` entry of the metadata (``type``, ``file``, …)."""
        ...

    def affine(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(μ (d,), M (d, k))`` when the map is ``x ↦ (x − μ) M + b`` (enables sentence-transformers files)."""
        ...

    def offset(self) -> np.ndarray | None:
        """``b`` (k,) of an affine map that adds one after ``(x − μ) M``, else ``None``."""
        ...


@dataclass
class AffinePostTransform:
    """``x ↦ (x − mean) @ matrix [+ bias]``, stored as tensors ``mean`` (d,), ``matrix`` (d, k) [and ``bias``
    (k,)] in ``file``."""

    baseline: str
    file: str
    mean: np.ndarray
    matrix: np.ndarray
    bias: np.ndarray | None = None

    def files(self) -> dict[str, dict[str, np.ndarray]]:
        tensors = {"mean": np.ascontiguousarray(self.mean, dtype=np.float32),
                   "matrix": np.ascontiguousarray(self.matrix, dtype=np.float32)}
        if self.bias is not None:
            tensors["bias"] = np.ascontiguousarray(self.bias, dtype=np.float32)
        return {self.file: tensors}

    def spec(self) -> dict[str, Any]:
        return {"type": "affine", "file": self.file, **({"bias": True} if self.bias is not None else {})}

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.mean, dtype=np.float64), np.asarray(self.matrix, dtype=np.float64)

    def offset(self) -> np.ndarray | None:
        return None if self.bias is None else np.asarray(self.bias, dtype=np.float64)


#: Directions whose variance is at most this share of the largest are treated as absent (rank deficiency).
RELATIVE_EIGEN_FLOOR = 1e-8


@dataclass
class PrincipalAxes:
    """The covariance of a corpus's embeddings ``X`` (N × d) in its eigenbasis.

    ``Σ = (X − μ)ᵀ (X − μ) / (N − 1) = U diag(s) Uᵀ`` with ``s`` descending (``variances``, clipped at 0) and
    the unit eigenvectors as the columns of ``directions`` (d × d). ``rank`` is the numerical rank: the
    directions with variance above :data:`RELATIVE_EIGEN_FLOOR` × the largest. The others (the *null
    directions*) carry no variance, e.g. a dimension a final LayerNorm with ``γ_i = 0`` makes constant
    (three of all-MiniLM-L6-v2's 384 mean-pooled dimensions), or the hyperplane a LayerNorm's output lies in.
    """

    mean: np.ndarray
    variances: np.ndarray
    directions: np.ndarray
    n_samples: int

    @property
    def rank(self) -> int:
        return numerical_rank(self.variances)


def numerical_rank(variances: np.ndarray) -> int:
    """Variances (descending) above :data:`RELATIVE_EIGEN_FLOOR` × the largest; 0 if none is positive."""
    s = np.asarray(variances)
    return int((s > s[0] * RELATIVE_EIGEN_FLOOR).sum()) if s.size and s[0] > 0 else 0


def principal_axes(embeddings: np.ndarray, what: str) -> PrincipalAxes:
    """:class:`PrincipalAxes` of ``embeddings`` (N × d, N ≥ 2) in float64; ``what`` names the baseline in errors.

    :class:`InputError` if the embeddings have no variance at all (every sentence encodes alike).
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise InputError(f"{what} needs an (N, d) embedding matrix with N >= 2, got shape {x.shape}")
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred / (x.shape[0] - 1)
    u, s, _ = np.linalg.svd(cov, hermitian=True)
    if not np.isfinite(s).all() or s[0] <= 0:
        raise InputError("the corpus embeddings have no variance (all sentences encode alike): use a varied corpus")
    return PrincipalAxes(mean=mean, variances=np.clip(s, 0.0, None), directions=u, n_samples=int(x.shape[0]))


# ---------------------------------------------------------------------------------- corpus
def sample_corpus(files: Sequence[str | os.PathLike[str]], max_sentences: int | None = None,
                  seed: int = 0, what: str = "post-processing") -> tuple[list[str], list[dict[str, Any]]]:
    """The sentences of ``files`` (one per line, blank lines skipped, in file order) and a record per file.

    With ``max_sentences`` below the total, a uniform sample without replacement drawn with ``seed``,
    kept in file order. ``what`` names the baseline in error messages.
    """
    from simcse_analysis.checkpoint import file_digest
    from simcse_analysis.corpora import read_text_corpus

    if not files:
        raise InputError("no corpus given: pass --corpus FILE (one sentence per line)")
    if max_sentences is not None and max_sentences < 1:
        raise InputError(f"--max-sentences {max_sentences}: must be at least 1")
    texts: list[str] = []
    records = []
    for f in files:
        p = Path(f)
        if p.suffix.lower() in (".csv", ".tsv"):
            raise InputError(f"--corpus {p}: {what} reads one sentence per line from a text file, not a table")
        rows = read_text_corpus(p)
        texts += rows
        records.append({"path": str(p.resolve()), "sha256": file_digest(p), "rows": len(rows)})
    if max_sentences is not None and max_sentences < len(texts):
        keep = sorted(random.Random(seed).sample(range(len(texts)), max_sentences))
        texts = [texts[i] for i in keep]
    return texts, records


# ---------------------------------------------------------------------------------- checkpoint
def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _st_files(tmp: Path, pooler: str, encoder_model: Any, max_length: int, mean: np.ndarray,
              matrix: np.ndarray, name: str, bias: np.ndarray | None = None) -> bool:
    """Sentence-transformers modules reproducing ``encode`` of an affine post-processed checkpoint."""
    from safetensors.numpy import save_file

    from .checkpoint_io import write_sentence_transformers_files

    mlp = getattr(getattr(encoder_model, "pooler", None), "dense", None) if pooler == "cls" else None
    hidden = int(encoder_model.config.hidden_size)
    if not write_sentence_transformers_files(tmp, pooler=pooler, hidden_size=hidden, max_length=max_length,
                                             mlp=mlp):
        return False
    modules = json.loads((tmp / "modules.json").read_text(encoding="utf-8"))
    idx = len(modules)
    folder = f"{idx}_{name}"
    (tmp / folder).mkdir()
    (tmp / folder / "config.json").write_text(json.dumps({
        "in_features": int(matrix.shape[0]), "out_features": int(matrix.shape[1]), "bias": True,
        "activation_function": "torch.nn.modules.linear.Identity"}, indent=2) + "\n", encoding="utf-8")
    # (x − μ) M + b = x M + (b − μ M): a Linear layer with weight Mᵀ (k × d) and bias b − μM (k,)
    offset = -(mean @ matrix) + (bias if bias is not None else 0.0)
    save_file({"linear.weight": np.ascontiguousarray(matrix.T, dtype=np.float32),
               "linear.bias": np.ascontiguousarray(offset, dtype=np.float32)},
              str(tmp / folder / "model.safetensors"))
    modules.append({"idx": idx, "name": str(idx), "path": folder, "type": "sentence_transformers.models.Dense"})
    (tmp / "modules.json").write_text(json.dumps(modules, indent=2) + "\n", encoding="utf-8")
    return True


def check_output_dir(out: str | os.PathLike[str], overwrite: bool) -> Path:
    """``out`` as a Path; :class:`InputError` if it is a file or a non-empty directory (unless ``overwrite``),
    holds something other than a checkpoint (``--overwrite`` replaces a previous checkpoint, never an arbitrary
    directory), or cannot be written (:func:`~simcse_analysis.io_utils.check_writable_dir`, touching nothing)."""
    outp = Path(out)
    if outp.exists() and (not outp.is_dir() or (any(outp.iterdir()) and not overwrite)):
        raise InputError(f"--out {outp} already exists and is not empty: choose a new directory or pass --overwrite")
    if outp.is_dir() and any(outp.iterdir()) and not (outp / "config.json").is_file():
        raise InputError(f"--out {outp} holds files that are not a checkpoint, which --overwrite would delete: "
                         "choose a new or empty directory")
    return check_writable_dir(outp)



def save_post_processed_checkpoint(base: str | os.PathLike[str], transform: PostTransform,
                                   out: str | os.PathLike[str], *, pooler: str, max_length: int,
                                   encoder_model: Any | None = None, metadata: dict[str, Any] | None = None,
                                   overwrite: bool = False) -> Path:
    """Write ``out``: the base checkpoint's files (hard links where the filesystem allows), the map's
    tensors and metadata; atomically (built beside ``out`` and swapped in).

    ``encoder_model`` (the loaded base transformer) enables the sentence-transformers module files of an
    affine map. Refuses a non-empty ``out`` unless ``overwrite``.
    """
    from safetensors.numpy import save_file

    from simcse_analysis.checkpoint import METADATA_FILE, read_metadata

    from .checkpoint_io import real_target, replace_dir

    check_apart([("--out", out)], [("MODEL", base)])
    base, out = Path(base), real_target(check_output_dir(out, overwrite))
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tensors = transform.files()
    try:
        tmp.mkdir(parents=True)
        for f in sorted(base.iterdir()):
            if f.is_file() and f.name not in _NOT_COPIED and f.name not in tensors and f.name != METADATA_FILE:
                _link_or_copy(f, tmp / f.name)
        for name, arrays in tensors.items():
            save_file(arrays, str(tmp / name))
        affine = transform.affine()
        st = (_st_files(tmp, pooler, encoder_model, max_length, *affine, name=transform.baseline.title(),
                        bias=transform.offset())
              if encoder_model is not None and affine is not None else False)
        base_meta = {k: v for k, v in read_metadata(base).items() if k not in ("post_transform", "baseline")}
        meta = {**base_meta, **(metadata or {}), "pooler": pooler, "max_length": int(max_length),
                "baseline": transform.baseline, "sentence_transformers": st, "post_transform": transform.spec()}
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


@dataclass
class PostProcessResult:
    """What :func:`post_process_checkpoint` did (JSON-able); ``details`` is the baseline's own summary."""

    output_dir: str
    base_model: str
    baseline: str
    pooler: str
    max_length: int
    n_sentences: int
    dim: int
    out_dim: int
    corpus: list[dict[str, Any]] = field(default_factory=list)
    sentence_transformers: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: ``fit(embeddings (N, d)) -> (transform, summary)``; the summary goes into the metadata and the result.
FitFn = Callable[[np.ndarray], tuple[PostTransform, dict[str, Any]]]


def post_process_checkpoint(model: str | os.PathLike[str], corpus: Sequence[str | os.PathLike[str]],
                            out: str | os.PathLike[str], fit: FitFn, *, baseline: str, method: str,
                            max_sentences: int | None = None, seed: int = 0, batch_size: int = 64,
                            overwrite: bool = False, encoder_kwargs: dict[str, Any] | None = None,
                            check_dim: Callable[[int], None] | None = None, texts: Sequence[str] | None = None,
                            min_sentences: int = 1, reads: Sequence[tuple[str, Any]] = (),
                            log: Callable[[str], None] | None = None) -> PostProcessResult:
    """Encode ``corpus`` with ``model``, ``fit`` the map and write the post-processed checkpoint to ``out``.

    ``encoder_kwargs`` go to :func:`~simcse_analysis.encoder.load_encoder` (pooler, max_length, device,
    dtype, cache …); the pooler and max length used are stored in the output so it encodes the same way.
    ``check_dim(d)`` validates settings that depend on the embedding dimension before encoding.
    ``texts`` replaces the corpus files by given sentences (recorded as such); fewer than ``min_sentences``
    are refused before anything is encoded; ``reads`` names further inputs (``(option, path)``). An ``out`` that
    is, contains or lies inside an input (the model — a training run counts whole —, a corpus file, ``reads``)
    is refused first (:func:`simcse_analysis.path_safety.check_apart`). The metadata's
    ``baseline`` entry records ``method`` and where the map was fitted.
    """
    from simcse_analysis.checkpoint import read_metadata, resolve_checkpoint, weights_fingerprint
    from simcse_analysis.encoder import load_encoder

    say = log or (lambda msg: None)
    check_apart([("--out", out)], [("MODEL", model), *(("--corpus", f) for f in corpus), *reads])
    outp = check_output_dir(out, overwrite)
    if texts is None:
        sentences, records = sample_corpus(corpus, max_sentences, seed, what=baseline)
    else:
        sentences, records = list(texts), [{"given_sentences": len(texts)}]
    if len(sentences) < min_sentences:
        raise InputError(f"{baseline} needs at least {min_sentences} sentences to fit on, got {len(sentences)}: "
                         "give a larger --corpus")
    path = resolve_checkpoint(model)
    if read_metadata(path).get("post_transform"):
        raise InputError(f"{model} already applies a post-transform ({read_metadata(path).get('baseline')}): "
                         f"fit {baseline} on its base model instead")
    enc = load_encoder(model, **(encoder_kwargs or {}))
    dim = int(enc.model.config.hidden_size)
    if check_dim is not None:
        check_dim(dim)
    say(f"encoding {len(sentences)} sentences with {model} ({enc.pooler}, max length {enc.max_length})")
    emb = enc.encode(sentences, batch_size=batch_size)
    transform, summary = fit(emb)
    meta = {baseline: {
        "method": method, "base_model": str(model), "base_path": str(path),
        "base_fingerprint": weights_fingerprint(path), "corpus": records, "n_sentences": len(sentences),
        "max_sentences": max_sentences, "seed": seed, "dim": dim, **summary}}
    try:
        save_post_processed_checkpoint(path, transform, outp, pooler=enc.pooler, max_length=enc.max_length,
                                       encoder_model=enc.model, metadata=meta, overwrite=overwrite)
    except OSError as e:  # a full disk or lost rights while writing: nothing half-written is left (atomic swap)
        raise write_error(f"--out {outp}", e) from e
    st = bool(read_metadata(outp).get("sentence_transformers"))
    return PostProcessResult(output_dir=str(outp), base_model=str(model), baseline=baseline, pooler=enc.pooler,
                             max_length=enc.max_length, n_sentences=len(sentences), dim=dim,
                             out_dim=int(summary.get("out_dim", dim)), corpus=records, sentence_transformers=st,
                             details=summary)
