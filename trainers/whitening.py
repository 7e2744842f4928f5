"""BERT-whitening (Su et al. 2021, "Whitening Sentence Representations for Better Semantics and Faster
Retrieval"): a post-processing baseline that makes sentence embeddings isotropic.

On the embeddings ``X`` (N × d) of a corpus:

* ``μ = mean(X)`` (d,),
* ``Σ = (X − μ)ᵀ (X − μ) / (N − 1)`` (the covariance, as ``np.cov`` in the reference),
* ``Σ = U diag(s) Uᵀ`` (SVD of the symmetric PSD ``Σ``; ``s`` descending),
* ``W = U diag(1/√s)[:, :K]`` (d × K): the first ``K`` components, each scaled to unit variance.

Whitened vectors are ``x̃ = (x − μ) W``; on the fitting corpus their covariance is the K × K identity.
``K < d`` also reduces the dimension (Su et al.'s "BERT-whitening-256"). ``K`` defaults to the number of
directions the corpus actually spans (see :func:`fit_whitening`).

:func:`whiten_checkpoint` writes a checkpoint directory that applies ``(x − μ) W`` at encoding time: the
base model's files (hard-linked when possible), ``whitening.safetensors`` (``mean`` (d,), ``matrix``
(d, K)) and ``simcse_analysis.json`` with ``post_transform: {"type": "affine", …}``, so every analysis and
the STS evaluation load it like any checkpoint (:func:`simcse_analysis.encoder.load_encoder`). Where the
pooler has a sentence-transformers equivalent, the module files (Transformer → Pooling [→ Dense tanh for
``cls``] → Dense(identity) with weight ``Wᵀ`` and bias ``−μW``) make ``SentenceTransformer(dir)`` return
the same vectors.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simcse_analysis.errors import InputError
from simcse_analysis.io_utils import check_writable_dir, write_error

#: File holding ``mean`` and ``matrix`` inside a whitened checkpoint.
WHITENING_FILE = "whitening.safetensors"

#: Components whose variance is below this share of the largest are treated as absent (rank deficiency).
RELATIVE_EIGEN_FLOOR = 1e-8

# Files of the base directory that are not copied: they describe the base (its sentence-transformers
# pipeline, its metadata, its model card), not the whitened model, and are rewritten where needed.
_NOT_COPIED = {"modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "README.md",
               ".gitattributes", WHITENING_FILE}


@dataclass
class Whitening:
    """A fitted whitening: ``transform(x) = (x − mean) @ matrix``.

    ``variances`` are the covariance's eigenvalues ``s`` (all d, descending); ``n_samples`` the number of
    embeddings it was fitted on.
    """

    mean: np.ndarray
    matrix: np.ndarray
    variances: np.ndarray
    n_samples: int

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_components(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def explained_variance(self) -> float:
        """Share of the total variance kept by the first K components: ``Σ_{i≤K} s_i / Σ_i s_i``."""
        total = float(self.variances.sum())
        return float(self.variances[: self.n_components].sum() / total) if total > 0 else float("nan")

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``(x − μ) W`` in float64, returned as float32 (N, K)."""
        return ((np.asarray(x, dtype=np.float64) - self.mean) @ self.matrix).astype(np.float32)


def fit_whitening(embeddings: np.ndarray, n_components: int | None = None) -> Whitening:
    """Fit μ and ``W = U diag(1/√s)[:, :K]`` on ``embeddings`` (N × d) (see the module docstring).

    ``n_components`` defaults to the covariance's numerical rank ``r`` (components with variance above
    :data:`RELATIVE_EIGEN_FLOOR` × the largest). That is ``d`` for generic data but ``d − 1`` for the
    output of a final LayerNorm: every token vector ``h`` satisfies ``Σ_i (h_i − β_i)/γ_i = 0``, so
    [CLS] and mean-pooled embeddings lie in an affine hyperplane and whitening that null direction
    would only amplify rounding noise. Raises :class:`InputError` if the data cannot support ``K``
    components (fewer than ``K + 1`` embeddings, or ``K > r``).
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise InputError(f"whitening needs a non-empty (N, d) embedding matrix, got shape {x.shape}")
    n, d = x.shape
    if n_components is not None and not 1 <= n_components <= d:
        raise InputError(f"--n-components {n_components}: must be between 1 and the embedding dimension {d}")
    need = (d if n_components is None else int(n_components)) + 1
    if n < need:
        raise InputError(f"whitening to {need - 1} components needs at least {need} sentences, got {n}: "
                         "give a larger --corpus / --max-sentences, or fewer --n-components")
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred / (n - 1)
    u, s, _ = np.linalg.svd(cov, hermitian=True)
    if not np.isfinite(s).all() or s[0] <= 0:
        raise InputError("the corpus embeddings have no variance (all sentences encode alike): use a varied corpus")
    rank = int((s > s[0] * RELATIVE_EIGEN_FLOOR).sum())
    k = rank if n_components is None else int(n_components)
    if rank < k:
        raise InputError(f"the corpus embeddings span only {rank} of {d} directions, so {k} components cannot be "
                         f"whitened: pass --n-components {rank} or less, or a more varied corpus")
    matrix = u[:, :k] / np.sqrt(s[:k])
    return Whitening(mean=mean, matrix=matrix, variances=np.clip(s, 0.0, None), n_samples=n)


# ---------------------------------------------------------------------------------- corpus
def sample_corpus(files: Sequence[str | os.PathLike[str]], max_sentences: int | None = None,
                  seed: int = 0) -> tuple[list[str], list[dict[str, Any]]]:
    """The sentences of ``files`` (one per line, blank lines skipped, in file order) and a record per file.

    With ``max_sentences`` below the total, a uniform sample without replacement drawn with ``seed``,
    kept in file order.
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
            raise InputError(f"--corpus {p}: whitening reads one sentence per line from a text file, not a table")
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


def _st_files(tmp: Path, pooler: str, encoder_model: Any, max_length: int, w: Whitening) -> bool:
    """Sentence-transformers modules reproducing ``encode`` of the whitened checkpoint (False if none)."""
    from safetensors.numpy import save_file

    from .checkpoint_io import write_sentence_transformers_files

    mlp = getattr(getattr(encoder_model, "pooler", None), "dense", None) if pooler == "cls" else None
    hidden = int(encoder_model.config.hidden_size)
    if not write_sentence_transformers_files(tmp, pooler=pooler, hidden_size=hidden, max_length=max_length,
                                             mlp=mlp):
        return False
    modules = json.loads((tmp / "modules.json").read_text(encoding="utf-8"))
    idx = len(modules)
    folder = f"{idx}_Whitening"
    (tmp / folder).mkdir()
    (tmp / folder / "config.json").write_text(json.dumps({
        "in_features": w.dim, "out_features": w.n_components, "bias": True,
        "activation_function": "torch.nn.modules.linear.Identity"}, indent=2) + "\n", encoding="utf-8")
    # (x − μ) W = x W + (−μ W): a Linear layer with weight Wᵀ (K × d) and bias −μW (K,)
    save_file({"linear.weight": np.ascontiguousarray(w.matrix.T, dtype=np.float32),
               "linear.bias": np.ascontiguousarray(-(w.mean @ w.matrix), dtype=np.float32)},
              str(tmp / folder / "model.safetensors"))
    modules.append({"idx": idx, "name": str(idx), "path": folder, "type": "sentence_transformers.models.Dense"})
    (tmp / "modules.json").write_text(json.dumps(modules, indent=2) + "\n", encoding="utf-8")
    return True


def save_whitened_checkpoint(base: str | os.PathLike[str], whitening: Whitening, out: str | os.PathLike[str], *,
                             pooler: str, max_length: int, encoder_model: Any | None = None,
                             metadata: dict[str, Any] | None = None, overwrite: bool = False,
                             baseline: str = "whitening") -> Path:
    """Write ``out``: the base checkpoint's files (hard links where the filesystem allows), the whitening
    tensors and metadata; atomically (built beside ``out`` and swapped in).

    ``encoder_model`` (the loaded base transformer) enables the sentence-transformers module files.
    Refuses a non-empty ``out`` unless ``overwrite``. ``baseline`` names the transform in the metadata (any
    affine map ``(x − mean) @ matrix`` is written the same way, e.g. the standardisation of ``trainers.standardize``).
    """
    from safetensors.numpy import save_file

    from simcse_analysis.checkpoint import METADATA_FILE, read_metadata

    from .checkpoint_io import replace_dir

    base, out = Path(base), Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file: choose a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError(f"--out {out} is not empty: choose a new directory or pass --overwrite")
    if out.resolve() == base.resolve():
        raise InputError(f"--out {out} is the base checkpoint itself: choose another directory")
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir(parents=True)
        for f in sorted(base.iterdir()):
            if f.is_file() and f.name not in _NOT_COPIED and f.name != METADATA_FILE:
                _link_or_copy(f, tmp / f.name)
        save_file({"mean": np.ascontiguousarray(whitening.mean, dtype=np.float32),
                   "matrix": np.ascontiguousarray(whitening.matrix, dtype=np.float32)}, str(tmp / WHITENING_FILE))
        st = _st_files(tmp, pooler, encoder_model, max_length, whitening) if encoder_model is not None else False
        base_meta = {k: v for k, v in read_metadata(base).items() if k != "post_transform"}
        meta = {**base_meta, **(metadata or {}), "pooler": pooler, "max_length": int(max_length),
                "baseline": baseline, "sentence_transformers": st,
                "post_transform": {"type": "affine", "file": WHITENING_FILE}}
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


@dataclass
class CorpusEncoding:
    """What a post-transform is fitted on: the base checkpoint, its loaded encoder, the corpus sentences (and
    a record per file) and their embeddings."""

    model: str
    path: Path
    encoder: Any
    texts: list[str]
    records: list[dict[str, Any]]
    embeddings: np.ndarray
    max_sentences: int | None
    seed: int

    def provenance(self) -> dict[str, Any]:
        """The base checkpoint and corpus, for the output's metadata."""
        from simcse_analysis.checkpoint import weights_fingerprint

        return {"base_model": self.model, "base_path": str(self.path),
                "base_fingerprint": weights_fingerprint(self.path), "corpus": self.records, "n_sentences": len(self.texts), "max_sentences": self.max_sentences,
                "seed": self.seed}


def encode_corpus(model: str | os.PathLike[str], corpus: Sequence[str | os.PathLike[str]],
                  out: str | os.PathLike[str], *, max_sentences: int | None = None, seed: int = 0, batch_size: int = 64, overwrite: bool = False,
                  encoder_kwargs: dict[str, Any] | None = None, log: Callable[[str], None] | None = None,
                  check: Callable[[Any], None] | None = None) -> CorpusEncoding:
    """Check ``out`` and the corpus, load ``model`` (refusing one that already applies a post-transform), run
    ``check(encoder)`` and encode the (sampled) corpus: the common start of every fitted post-transform."""
    from simcse_analysis.checkpoint import read_metadata, resolve_checkpoint
    from simcse_analysis.encoder import load_encoder

    outp = Path(out)
    if outp.exists() and (not outp.is_dir() or (any(outp.iterdir()) and not overwrite)):
        raise InputError(f"--out {outp} already exists and is not empty: choose a new directory or pass --overwrite")
    check_writable_dir(outp)
    texts, records = sample_corpus(corpus, max_sentences, seed)
    path = resolve_checkpoint(model)
    if read_metadata(path).get("post_transform"):
        raise InputError(f"{model} already applies a post-transform (it is whitened or standardised): fit on its "
                         "base model instead")
    enc = load_encoder(model, **(encoder_kwargs or {}))
    if check is not None:
        check(enc)
    (log or (lambda msg: None))(f"encoding {len(texts)} sentences with {model} ({enc.pooler}, max length "
                                f"{enc.max_length})")
    emb = enc.encode(texts, batch_size=batch_size)
    return CorpusEncoding(str(model), path, enc, texts, records, emb, max_sentences, seed)


@dataclass
class WhiteningResult:
    """What :func:`whiten_checkpoint` did (JSON-able)."""

    output_dir: str
    base_model: str
    pooler: str
    max_length: int
    n_sentences: int
    dim: int
    n_components: int
    explained_variance: float
    corpus: list[dict[str, Any]] = field(default_factory=list)
    sentence_transformers: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def whiten_checkpoint(model: str | os.PathLike[str], corpus: Sequence[str | os.PathLike[str]],
                      out: str | os.PathLike[str], *, n_components: int | None = None,
                      max_sentences: int | None = None, seed: int = 0, batch_size: int = 64,
                      overwrite: bool = False, encoder_kwargs: dict[str, Any] | None = None,
                      log: Callable[[str], None] | None = None) -> WhiteningResult:
    """Encode ``corpus`` with ``model``, fit the whitening and write the whitened checkpoint to ``out``.

    ``encoder_kwargs`` go to :func:`~simcse_analysis.encoder.load_encoder` (pooler, max_length, device,
    dtype, cache …); the pooler and max length used are the checkpoint's defaults unless given there,
    and are stored in the output so it encodes the same way. Everything the user can get wrong (corpus,
    model, output directory, K) is checked before ``out`` is written.
    """
    from simcse_analysis.checkpoint import read_metadata

    def check(enc: Any) -> None:
        dim = int(enc.model.config.hidden_size)
        if n_components is not None and not 1 <= n_components <= dim:
            raise InputError(f"--n-components {n_components}: must be between 1 and the embedding dimension {dim}")

    fitted = encode_corpus(model, corpus, out, max_sentences=max_sentences, seed=seed, batch_size=batch_size,
                           overwrite=overwrite, encoder_kwargs=encoder_kwargs, log=log, check=check)
    outp, path, enc, texts, records, emb = (Path(out), fitted.path, fitted.encoder, fitted.texts, fitted.records,
                                            fitted.embeddings)
    w = fit_whitening(emb, n_components)
    meta = {"whitening": {
        "method": "Su et al. 2021: (x - mean) @ U diag(1/sqrt(s))[:, :K], SVD of the corpus covariance",
        **fitted.provenance(), "dim": w.dim, "n_components": w.n_components, "explained_variance": w.explained_variance}}
    try:
        save_whitened_checkpoint(path, w, outp, pooler=enc.pooler, max_length=enc.max_length,
                                 encoder_model=enc.model, metadata=meta, overwrite=overwrite)
    except OSError as e:  # a full disk or lost rights while writing: nothing half-written is left (atomic swap)
        raise write_error(f"--out {outp}", e) from e
    st = bool(read_metadata(outp).get("sentence_transformers"))
    return WhiteningResult(output_dir=str(outp), base_model=str(model), pooler=enc.pooler,
                           max_length=enc.max_length, n_sentences=len(texts), dim=w.dim,
                           n_components=w.n_components, explained_variance=w.explained_variance,
                           corpus=records, sentence_transformers=st)
