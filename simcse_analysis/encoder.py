"""Sentence encoding: ``load_encoder(...)`` then ``encoder.encode(sentences)``.

The hot path of every analysis. Sentences are tokenised once, sorted by token length into buckets
(so each batch pads to nearly its own length), run under ``torch.inference_mode`` and put back in
input order. Vectors are cached on disk per sentence (:mod:`simcse_analysis.cache`), keyed by the
weights' fingerprint, pooler, max_length, dtype and the sentence, so no command re-encodes a sentence
another command already encoded with the same settings.

Several poolers of the same weights cost one forward pass: an encoder loaded with ``also_pool=(P, …)``
computes, in every forward pass it runs, the vectors of those poolers too (and, when it computes the
per-layer stack, their per-layer poolings) and puts them in the cache, so an encoder of the same
checkpoint with pooler ``P`` finds them there (``compare M@avg M@cls_before_pooler`` and ``report`` do this).

A checkpoint's ``simcse_analysis.json`` may declare a ``post_transform`` (e.g. whitening, written by
``simcse-analyze whiten``): ``{"type": "affine", "file": "whitening.safetensors"}`` holding tensors
``mean`` (d,) and ``matrix`` (d, k); encoded vectors are then ``(x - mean) @ matrix``; or a normalising
flow (``simcse-analyze flow``), whose latent is returned (:mod:`simcse_analysis.post_transforms`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import checkpoint as ckpt
from . import progress
from .cache import EmbeddingCache, sentence_keys
from .errors import InputError, NonFiniteEmbeddingError
from .hf_logging import quiet_transformers
from .metrics.device import torch_device
from .pooling import NEEDS_HIDDEN_STATES, check_pooler, masked_mean, pool, split_pooler
from .post_transforms import AffineMap, FlowMap, load_post_transform
from .records import list_argument

DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32, "float32": torch.float32,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
    "fp16": torch.float16, "float16": torch.float16,
}
_DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}

#: Inputs at least this long show a progress bar unless ``show_progress_bar`` says otherwise (outside a
#: progress job; inside one, batches are reported to the job's stage: :mod:`simcse_analysis.progress`).
PROGRESS_THRESHOLD = progress.STANDALONE_THRESHOLD


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[str(dtype).lower()]
    except KeyError:
        raise InputError(f"unknown dtype {dtype!r}: choose fp32, bf16 or fp16") from None


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch_device(device)  # InputError for an unknown device or a GPU that is not there


def check_dtype_for_device(dtype: torch.dtype, device: torch.device) -> None:
    """Refuse half precision (fp16) on the CPU: PyTorch has no fast fp16 matrix kernels there, so encoding
    runs slower than in fp32 (2.2x on an AVX-512 CPU, 15-20x on others) and rounds more, which no one asks
    for on purpose. bf16 is allowed (fast where the CPU has bf16 instructions)."""
    if dtype == torch.float16 and device.type == "cpu":
        raise InputError("--dtype fp16 on the CPU is slower than fp32 (PyTorch has no fast half-precision CPU "
                         "kernels) and rounds more: use --dtype bf16 or fp32 on the CPU, or fp16 with --device cuda")


def combined_fingerprint(weights: str, tokenizer: str | None, post_transform_digest: str | None) -> str:
    """Identity of what an encoder computes: SHA-256 over its weights' fingerprint (weights and config), its
    tokenizer files' (:func:`simcse_analysis.checkpoint.tokenizer_fingerprint`) and the digest of its
    post-transform file (whitening, flow …) if any."""
    parts = [weights, tokenizer or "", post_transform_digest or ""]
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def _check_texts(sentences: Sequence[str]) -> list[str]:
    texts = list_argument(sentences, "sentences", "sentences (str)")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise InputError(f"sentences[{i}] is {type(t).__name__}, not str: pass a list of sentences (str)")
    return texts


def check_max_length(max_length: Any) -> int:
    """``max_length`` (tokens per sentence, truncation) as an int >= 1; :class:`InputError` otherwise (a
    negative one overflows inside ``tokenizers``, and 0 is not "the default")."""
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 1:
        raise InputError(f"max_length must be a positive integer (tokens per sentence), got {max_length!r}: pass "
                         "e.g. max_length=128, or None for the checkpoint's own limit")
    return int(max_length)


def nonfinite_tensor(model: torch.nn.Module) -> tuple[str, int, int] | None:
    """``(name, non-finite values, values)`` of the first floating-point tensor of ``model``'s state dict that
    holds NaN/inf, or ``None`` when every weight and buffer is finite."""
    for name, t in model.state_dict().items():
        if t.is_floating_point():
            finite = torch.isfinite(t)
            if not bool(finite.all()):
                return name, int((~finite).sum()), t.numel()
    return None


def layer_pooler_for(pooler: str) -> str:
    """Per-layer pooling that goes with a pooler: the [CLS] vector for CLS-type poolers, the token mean otherwise."""
    return "cls_before_pooler" if pooler.startswith("cls") else "avg"


def _check_layer_pooler(pooler: str) -> str:
    if pooler not in ("avg", "cls_before_pooler"):
        raise InputError(f"per-layer pooling {pooler!r} is not supported: use avg or cls_before_pooler")
    return pooler



class Encoder:
    """A transformer plus a pooler that maps sentences to float32 vectors.

    Build one with :func:`load_encoder` (from a checkpoint) or :meth:`from_model` (an in-memory model,
    e.g. during training). ``encode`` is the one way to get vectors.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, *, pooler: str, max_length: int,
                 device: torch.device, dtype: torch.dtype, name: str, path: Path | None = None,
                 fingerprint: str | None = None, cache: EmbeddingCache | None = None,
                 post_transform: AffineMap | FlowMap | None = None,
                 post_transform_digest: str | None = None, tokenizer_fingerprint: str | None = None,
                 also_pool: Sequence[str] = ()) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.pooler = check_pooler(pooler)
        self.max_length = check_max_length(max_length)
        self.tokenizer_fingerprint = tokenizer_fingerprint
        self._weights_problem: tuple[str, int, int] | None | bool = False  # False: not checked yet
        self._device = device
        self._dtype = dtype
        self.name = name
        self.path = path
        self.weights_fingerprint = fingerprint
        self.cache = cache
        self.post_transform = post_transform
        self._post_digest = post_transform_digest
        if pooler == "cls" and getattr(model, "pooler", None) is None:
            raise InputError(f"{name}: pooler 'cls' needs the model's pooler layer, which this "
                             "checkpoint lacks: use --pooler cls_before_pooler")
        self.also_pool: tuple[str, ...] = ()
        self.set_also_pool(also_pool)

    def set_also_pool(self, poolers: Sequence[str]) -> None:
        """Poolers (of these same weights) whose vectors every forward pass also computes and caches.

        Only rows a forward pass encodes anyway get them (never an extra pass), and only with a cache. The
        encoder's own pooler, duplicates and ``cls`` without a pooler layer are dropped."""
        has_pooler_layer = getattr(self.model, "pooler", None) is not None
        self.also_pool = tuple(dict.fromkeys(
            p for p in (check_pooler(q) for q in poolers) if p != self.pooler and (p != "cls" or has_pooler_layer)))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_model(cls, model: torch.nn.Module, tokenizer: Any, *, pooler: str, max_length: int = 512,
                   name: str = "in-memory", device: str | torch.device | None = None) -> Encoder:
        """Wrap an in-memory model (no cache: its weights may change between calls)."""
        dev = next(model.parameters()).device if device is None else torch.device(device)
        dtype = next(model.parameters()).dtype
        return cls(model, tokenizer, pooler=pooler, max_length=max_length, device=dev, dtype=dtype,
                   name=name)

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> str:
        return str(self._device)

    @property
    def dtype(self) -> str:
        return _DTYPE_NAMES.get(self._dtype, str(self._dtype))

    @property
    def fingerprint(self) -> str | None:
        """Identity of what ``encode`` computes for given settings: weights and config, the tokenizer files,
        and the post-transform if any (the pooler, max length and dtype are recorded beside it)."""
        if self.weights_fingerprint is None:
            return None
        return combined_fingerprint(self.weights_fingerprint, self.tokenizer_fingerprint, self._post_digest)

    @property
    def dim(self) -> int:
        if self.post_transform is not None:
            return self.post_transform.out_dim
        return int(self.model.config.hidden_size)

    def describe(self) -> dict[str, Any]:
        """JSON-able summary of the encoder's settings (for result records and report headers)."""
        return {"model": self.name, "path": str(self.path) if self.path else None, "pooler": self.pooler,
                "max_length": self.max_length, "dtype": self.dtype, "device": self.device,
                "fingerprint": self.fingerprint, "dim": self.dim,
                "post_transform": self.post_transform.kind if self.post_transform is not None else None}

    # ------------------------------------------------------------------ encoding
    def encode(self, sentences: Sequence[str], batch_size: int = 64, normalize: bool = False,
               show_progress_bar: bool | None = None, use_cache: bool = True) -> np.ndarray:
        """Embed ``sentences`` → float32 array ``(N, d)`` in input order.

        ``normalize=True`` returns unit-L2 rows ``x / ||x||₂``. Each distinct sentence is encoded once;
        when the encoder was loaded from a checkpoint, vectors are read from and written to the
        per-sentence disk cache (``use_cache=False`` bypasses it for this call).
        """
        texts = _check_texts(sentences)
        (emb,) = self._outputs(texts, [("pooled", self.pooler)], batch_size, show_progress_bar, use_cache)
        return self._finish(emb, normalize)

    def encode_layers(self, sentences: Sequence[str], batch_size: int = 64, pooler: str = "avg",
                      show_progress_bar: bool | None = None) -> np.ndarray:
        """Every hidden layer pooled → float32 array ``(L+1, N, d)``.

        Index 0 is the embedding layer, ``L`` the last layer. ``pooler`` is ``avg`` (masked token mean)
        or ``cls_before_pooler`` ([CLS] vector). No post-transform is applied.
        """
        texts = _check_texts(sentences)
        (stack,) = self._outputs(texts, [("layers", _check_layer_pooler(pooler))], batch_size, show_progress_bar)
        return np.ascontiguousarray(stack.transpose(1, 0, 2))

    def encode_with_layers(self, sentences: Sequence[str], batch_size: int = 64, layer_pooler: str = "avg",
                           normalize: bool = False, show_progress_bar: bool | None = None
                           ) -> tuple[np.ndarray, np.ndarray]:
        """``(encode(sentences), encode_layers(sentences, pooler=layer_pooler))`` from ONE forward pass
        over the sentences that neither output has cached (a command that needs both pays once)."""
        texts = _check_texts(sentences)
        emb, stack = self._outputs(texts, [("pooled", self.pooler), ("layers", _check_layer_pooler(layer_pooler))],
                                   batch_size, show_progress_bar)
        return self._finish(emb, normalize), np.ascontiguousarray(stack.transpose(1, 0, 2))

    def _finish(self, emb: np.ndarray, normalize: bool) -> np.ndarray:
        if self.post_transform is not None:
            emb = self.post_transform.apply(emb)
            bad = np.flatnonzero(~np.isfinite(emb).all(axis=1))
            if bad.size:  # the model's vectors were checked finite: the map is at fault
                spec = ckpt.read_metadata(self.path).get("post_transform", {}) if self.path else {}
                raise InputError(f"{self.name}: its post-transform ({self.post_transform.kind}, "
                                 f"{spec.get('file', 'in memory')}) turns finite vectors into NaN/inf ({bad.size} of "
                                 f"{len(emb)} sentences): the file holds NaN/inf or diverged when it was fitted; fit "
                                 "it again (simcse-analyze whiten/abtt/flow/standardize)")
        if normalize:
            emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return emb

    def _head(self, kind: str, pooler: str) -> tuple[Callable[[Any, torch.Tensor], torch.Tensor], int]:
        """``(fn, k)``: ``fn(model output, mask)`` → ``(k, B, d)`` for one kind of output."""
        if kind == "pooled":
            return (lambda out, mask: pool(pooler, out, mask, getattr(self.model, "pooler", None)).unsqueeze(0)), 1
        if pooler == "avg":
            return (lambda out, mask: torch.stack([masked_mean(h, mask) for h in out.hidden_states])), self.n_layers
        return (lambda out, mask: torch.stack([h[:, 0] for h in out.hidden_states])), self.n_layers

    def cache_settings(self, kind: str, pooler: str) -> dict[str, Any]:
        """What a cached vector depends on besides its sentence (the cache namespace's settings): the weights
        and config, the tokenizer files, the kind of output, pooler, max length and dtype. (Cached vectors
        are the model's, before any post-transform, so the post-transform is not part of the key.)"""
        return {"fingerprint": self.weights_fingerprint, "tokenizer": self.tokenizer_fingerprint, "kind": kind,
                "pooler": pooler, "max_length": self.max_length, "dtype": self.dtype, "v": 2}

    def cache_label(self) -> dict[str, Any]:
        """How ``simcse-analyze cache`` names what this encoder cached (not part of any key)."""
        return {"model": self.name, "path": str(self.path) if self.path else None,
                "fingerprint": self.weights_fingerprint}

    def _companion_wants(self, wants: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The outputs of :attr:`also_pool` that go with ``wants`` and are not among them."""
        extra: list[tuple[str, str]] = []
        for kind, _ in wants:
            for p in self.also_pool:
                w = ("pooled", p) if kind == "pooled" else ("layers", layer_pooler_for(p))
                if w not in wants and w not in extra:
                    extra.append(w)
        return extra

    @property
    def n_layers(self) -> int:
        """Hidden states the model returns: the embedding layer plus every transformer layer."""
        return int(self.model.config.num_hidden_layers) + 1

    def _outputs(self, texts: list[str], wants: list[tuple[str, str]], batch_size: int,
                 show_progress_bar: bool | None, use_cache: bool = True) -> list[np.ndarray]:
        """One array per ``(kind, pooler)`` in ``wants``, sentence axis first: pooled ``(N, d)``, layers
        ``(N, L+1, d)``. Distinct sentences only are looked up and encoded, every missing one in a single
        forward pass that computes every wanted output it lacks."""
        hidden = int(self.model.config.hidden_size)
        shapes = [(hidden,) if kind == "pooled" else (self.n_layers, hidden) for kind, _ in wants]
        if not texts:
            return [np.zeros((0, *s), dtype=np.float32) for s in shapes]
        index: dict[str, int] = {}
        inverse = np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.int64, count=len(texts))
        unique = list(index)
        n = len(unique)
        cache = self.cache if use_cache and self.weights_fingerprint is not None else None
        keys = sentence_keys(unique) if cache is not None else []
        results: list[np.ndarray] = []
        missing: list[np.ndarray] = []  # per want: bool mask of the unique sentences to encode
        spaces = []
        for (kind, pooler), shape in zip(wants, shapes):
            arr, found = None, np.zeros(n, dtype=bool)
            space = None
            if cache is not None:
                space = cache.namespace(self.cache_settings(kind, pooler), self.cache_label())
                arr, found = space.fetch(keys)
                if arr is not None and arr.shape[1:] != shape:
                    arr, found = None, np.zeros(n, dtype=bool)
                cache.record(int(found.sum()), n)
            results.append(arr if arr is not None else np.empty((n, *shape), dtype=np.float32))
            missing.append(~found)
            spaces.append(space)
        todo = [w for w in range(len(wants)) if missing[w].any()]
        if todo:
            rows = np.flatnonzero(np.logical_or.reduce([missing[w] for w in todo]))
            # companions (also_pool): computed on these rows where their own namespace lacks them
            extras = []
            for want in (self._companion_wants([wants[w] for w in todo]) if cache is not None else []):
                space = cache.namespace(self.cache_settings(*want), self.cache_label())
                lacking = ~space.contains([keys[i] for i in rows])
                if lacking.any():
                    extras.append((want, space, lacking))
            computing = [wants[w] for w in todo] + [want for want, _, _ in extras]
            heads = [self._head(*want) for want in computing]
            needs_hidden = any(kind == "layers" or pooler in NEEDS_HIDDEN_STATES for kind, pooler in computing)

            def fn(out: Any, mask: torch.Tensor) -> torch.Tensor:
                return torch.cat([h(out, mask) for h, _ in heads])

            fn.__name__ = "+".join(f"{kind}:{pooler}" for kind, pooler in computing)
            computed = self._run([unique[i] for i in rows], batch_size, show_progress_bar, fn, needs_hidden)
            self._check_finite(computed.transpose(1, 0, 2), rows, unique, inverse, fn, needs_hidden)  # before caching
            start = 0
            parts = []
            for want, (_, k) in zip(computing, heads):
                part = computed[start:start + k]  # (k, m, d)
                start += k
                parts.append(part[0] if want[0] == "pooled" else part.transpose(1, 0, 2))
            for w, part in zip(todo, parts):
                new = missing[w][rows]  # rows this output lacked: a cached row keeps its cached value
                results[w][rows[new]] = part[new]
                if spaces[w] is not None:
                    spaces[w].put([keys[i] for i in rows[new]], part[new])
            for (_, space, lacking), part in zip(extras, parts[len(todo):]):
                space.put([keys[i] for i in rows[lacking]], part[lacking])
        for w, r in enumerate(results):  # cached rows too (a cache written before vectors were checked)
            self._check_finite(r, np.arange(n), unique, inverse, self._head(*wants[w])[0],
                               wants[w][0] == "layers" or wants[w][1] in NEEDS_HIDDEN_STATES)
        return [r[inverse] for r in results]

    def _check_finite(self, arr: np.ndarray, rows: np.ndarray, unique: list[str], inverse: np.ndarray,
                      fn: Callable[[Any, torch.Tensor], torch.Tensor], hidden_states: bool) -> None:
        """:class:`NonFiniteEmbeddingError` if a row of ``arr`` (row ``j`` = the output of sentence
        ``unique[rows[j]]``, any trailing shape) holds NaN/inf, naming the model, the sentence and the cause."""
        if arr.size == 0 or np.isfinite(arr).all():
            return
        bad = np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))
        u = int(rows[bad[0]])
        text = unique[u]
        index = int(np.flatnonzero(inverse == u)[0])
        cause = self._nonfinite_cause(text, fn, hidden_states)
        what = f"{self.pooler} vector" if arr.ndim == 2 or arr.shape[1] == 1 else "per-layer vectors"
        raise NonFiniteEmbeddingError(self.name, what, int(bad.size), len(arr), index, text, cause)

    def _nonfinite_cause(self, text: str, fn: Callable[[Any, torch.Tensor], torch.Tensor],
                         hidden_states: bool) -> str:
        """The likely reason a vector is NaN/inf: weights (checked once), a half-precision overflow (the
        sentence is run again in fp32), or an overflow inside the model."""
        if self._weights_problem is False:
            self._weights_problem = nonfinite_tensor(self.model)
        if self._weights_problem:
            name, k, total = self._weights_problem  # type: ignore[misc]
            where = f" of {self.path}" if self.path else ""
            return (f"cause: NaN/inf weights in the checkpoint{where} (tensor {name}: {k:,} of {total:,} values): "
                    "copy or download the checkpoint again, or retrain it")
        if self._dtype in (torch.float16, torch.bfloat16) and self._finite_in_fp32(text, fn, hidden_states):
            return (f"cause: {self.dtype} overflow (the same sentence gives a finite vector in fp32): re-run with "
                    "--dtype fp32" + (" or bf16 (fp32's range)" if self._dtype == torch.float16 else ""))
        return (f"cause: the model overflows on this input in {self.dtype} although its weights are finite: "
                "check the checkpoint (e.g. evaluate it in fp32), or leave this sentence out")

    def _finite_in_fp32(self, text: str, fn: Callable[[Any, torch.Tensor], torch.Tensor], hidden_states: bool) -> bool:
        """Whether ``text`` encodes to a finite output with the model in fp32 (converted in place and back:
        fp16/bf16 → fp32 → fp16/bf16 is exact)."""
        try:
            self.model.float()
            return bool(np.isfinite(self._run([text], 1, False, fn, hidden_states)).all())
        finally:
            self.model.to(self._dtype)

    def _tokenize(self, texts: list[str]) -> tuple[list[list[int]], list[list[int]] | None]:
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=False,
                             return_attention_mask=False)
        return enc["input_ids"], enc.get("token_type_ids")

    @torch.inference_mode()
    def _run(self, texts: list[str], batch_size: int, show_progress_bar: bool | None,
             fn: Callable[[Any, torch.Tensor], torch.Tensor], hidden_states: bool) -> np.ndarray:
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        n = len(texts)
        if n == 0:
            raise ValueError("_run needs at least one sentence")
        ids, types = self._tokenize(texts)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=n)
        order = np.argsort(-lengths, kind="stable")  # longest first: memory peaks early, if at all
        pad_id = self.tokenizer.pad_token_id or 0
        was_training = self.model.training
        self.model.eval()
        # reported to the open progress job (stage bar, job total), else a plain bar for long lists
        starts = progress.batches(range(0, n, batch_size), n, batch_size, show=show_progress_bar,
                                  desc=f"encoding {n} sentences")
        out_chunks: list[torch.Tensor] = []
        try:
            for s in starts:
                idx = order[s:s + batch_size]
                width = int(lengths[idx[0]])
                input_ids = np.full((len(idx), width), pad_id, dtype=np.int64)
                mask = np.zeros((len(idx), width), dtype=np.int64)
                tt = np.zeros((len(idx), width), dtype=np.int64) if types is not None else None
                for r, i in enumerate(idx):
                    L = int(lengths[i])
                    input_ids[r, :L] = ids[i]
                    mask[r, :L] = 1
                    if tt is not None:
                        tt[r, :L] = types[i]
                inputs = {"input_ids": torch.from_numpy(input_ids).to(self._device),
                          "attention_mask": torch.from_numpy(mask).to(self._device)}
                if tt is not None:
                    inputs["token_type_ids"] = torch.from_numpy(tt).to(self._device)
                out = self.model(**inputs, output_hidden_states=hidden_states, return_dict=True)
                out_chunks.append(fn(out, inputs["attention_mask"]).float().cpu())
        finally:
            if was_training:
                self.model.train()
        stacked = torch.cat(out_chunks, dim=1).numpy()
        result = np.empty_like(stacked)
        result[:, order] = stacked  # undo the length sort
        return result


def later_poolers(checkpoints: Sequence[tuple[str | os.PathLike[str], str | None]]) -> list[tuple[str, ...]]:
    """For each ``(checkpoint, pooler or None)`` of a command's list, the poolers that *later* entries ask of the
    same checkpoint directory (``None``: its default pooler): pass them as ``also_pool`` when loading the
    entry, and its forward passes fill the cache for them (one forward pass for several poolers). An entry
    that does not resolve gets ``()``; loading it reports the error."""
    resolved: list[tuple[Path, str] | None] = []
    for name, pooler in checkpoints:
        try:
            path = ckpt.resolve_checkpoint(name).resolve()
            resolved.append((path, check_pooler(pooler or ckpt.default_pooler(path))))
        except InputError:
            resolved.append(None)
    out = []
    for i, here in enumerate(resolved):
        later = [r[1] for r in resolved[i + 1:] if here is not None and r is not None and r[0] == here[0]]
        out.append(tuple(dict.fromkeys(p for p in later if p != here[1])) if here is not None else ())
    return out


def load_tokenizer(path: Path, *, trust_remote_code: bool = False) -> Any:
    """The tokenizer of checkpoint directory ``path``; :class:`InputError` if it cannot be loaded."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    except Exception as e:
        raise InputError(f"cannot load a tokenizer from {path}: {e}".splitlines()[0]) from e


def check_checkpoint(name_or_path: str | os.PathLike[str], *, trust_remote_code: bool = False) -> Path:
    """Everything about a checkpoint that can be checked without loading its weights: it resolves (a run
    directory to its ``best/``), its safetensors files are complete, its tokenizer loads and fits the
    model's vocabulary. Commands call it for every ``MODEL`` before encoding with the first, so one bad
    checkpoint fails the command at once instead of after the others' work. Returns the directory."""
    path = ckpt.resolve_checkpoint(name_or_path)
    ckpt.check_tokenizer_fits(load_tokenizer(path, trust_remote_code=trust_remote_code), path)
    return path


def describe_checkpoint(name_or_path: str | os.PathLike[str], pooler: str | None = None) -> dict[str, Any]:
    """What :meth:`Encoder.describe` will say about a checkpoint (``model``, ``path``, ``pooler``,
    ``fingerprint``), read without loading its weights: commands use it to match a checkpoint against a
    saved document before any encoding. ``name_or_path`` may be ``MODEL@POOLER``."""
    name, at = split_pooler(str(name_or_path))
    path = ckpt.resolve_checkpoint(name)
    spec = ckpt.read_metadata(path).get("post_transform")
    post = ckpt.file_digest(path / spec["file"]) if spec and (path / str(spec.get("file", ""))).is_file() else None
    return {"model": name, "path": str(path), "pooler": check_pooler(at or pooler or ckpt.default_pooler(path)),
            "fingerprint": combined_fingerprint(ckpt.weights_fingerprint(path), ckpt.tokenizer_fingerprint(path), post)}


def load_encoder(name_or_path: str | os.PathLike[str], pooler: str | None = None,
                 max_length: int | None = None, device: str | torch.device | None = None,
                 dtype: str | torch.dtype | None = None, cache_dir: str | os.PathLike[str] | None = None,
                 use_cache: bool = True, trust_remote_code: bool = False, also_pool: Sequence[str] = ()) -> Encoder:
    """Load a checkpoint (hub id, alias such as ``all-MiniLM-L6-v2``, or directory) as an :class:`Encoder`.

    ``name_or_path`` may end in ``@POOLER`` (``all-MiniLM-L6-v2@avg``, as every command reads a ``MODEL``;
    :func:`~simcse_analysis.pooling.split_pooler`); ``pooler`` then must be ``None`` or the same.
    ``pooler`` defaults to the checkpoint's own (metadata, then sentence-transformers pooling, then
    ``cls``); ``max_length`` to the checkpoint's; ``device`` to the best available; ``dtype`` to fp32
    (fp16 on the CPU is refused: :func:`check_dtype_for_device`).
    Weights load from safetensors when present; ``.bin`` files are read with ``weights_only``. Remote
    modelling code runs only with ``trust_remote_code=True``. ``also_pool``: further poolers whose vectors
    every forward pass also computes and caches (:meth:`Encoder.set_also_pool`), so encoding the same
    sentences with those poolers later reads them from the cache.

    >>> from simcse_analysis import load_encoder
    >>> enc = load_encoder("all-MiniLM-L6-v2", pooler="avg", use_cache=False)
    >>> x = enc.encode(["A man plays a guitar.", "Someone is playing music."], normalize=True)
    >>> x.shape, x.dtype.name, round(float((x * x).sum(axis=1).min()), 4)
    ((2, 384), 'float32', 1.0)
    """
    from transformers import AutoModel

    if max_length is not None:
        max_length = check_max_length(max_length)
    name, at = split_pooler(str(name_or_path))
    if at is not None and pooler is not None and pooler != at:
        raise InputError(f"{name_or_path} asks for pooler {at!r} but pooler={pooler!r} was given too: give one")
    name_or_path = name if at is not None else name_or_path
    path = ckpt.resolve_checkpoint(name_or_path)
    meta = ckpt.read_metadata(path)
    pooler = check_pooler(at or pooler or ckpt.default_pooler(path))
    torch_dtype = resolve_dtype(dtype)
    dev = resolve_device(device)
    check_dtype_for_device(torch_dtype, dev)
    tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
    try:
        with quiet_transformers():  # we report missing pooler weights ourselves, below
            model, info = AutoModel.from_pretrained(
                str(path), dtype=torch_dtype, trust_remote_code=trust_remote_code, output_loading_info=True)
    except ValueError as e:
        if "trust_remote_code" in str(e):
            raise InputError(f"{name_or_path} ships its own modelling code; rerun with --trust-remote-code "
                             "if you trust it") from e
        raise InputError(f"cannot load model weights from {path}: {str(e).splitlines()[0]}") from e
    except Exception as e:  # OSError, torch's RuntimeError, safetensors' SafetensorError: the files are bad
        err = ckpt.loading_error(path, e)
        if err is None:
            raise
        raise err from e
    if pooler == "cls" and any(k.startswith("pooler.") for k in info.get("missing_keys", [])):
        raise InputError(f"{name_or_path} has no trained pooler layer, so pooler 'cls' would be random: "
                         "use --pooler cls_before_pooler (or avg)")
    ckpt.check_tokenizer_fits(tokenizer, path, int(model.get_input_embeddings().num_embeddings))
    model.to(dev).eval()
    tok_max = getattr(tokenizer, "model_max_length", None)
    pos_max = getattr(model.config, "max_position_embeddings", None)
    length = max_length or ckpt.default_max_length(path, tok_max)
    if pos_max:
        length = min(length, int(pos_max))
    post, post_digest = None, None
    spec = meta.get("post_transform")
    if spec:
        post = load_post_transform(path, spec, ckpt.METADATA_FILE)
        post_digest = ckpt.file_digest(path / spec["file"])
    cache = EmbeddingCache(cache_dir) if use_cache else None
    return Encoder(model, tokenizer, pooler=pooler, max_length=length, device=dev, dtype=torch_dtype,
                   name=str(name_or_path), path=path, fingerprint=ckpt.weights_fingerprint(path),
                   cache=cache, post_transform=post, post_transform_digest=post_digest,
                   tokenizer_fingerprint=ckpt.tokenizer_fingerprint(path), also_pool=also_pool)
