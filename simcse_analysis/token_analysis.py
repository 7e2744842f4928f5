"""Token-level anisotropy of checkpoints: Ethayarajh (2019)'s measures per layer, rogue dimensions
(Timkey & van Schijndel 2021) and the degeneration of the token-embedding matrix (Gao et al. 2019,
Li et al. 2020). Formulas: :mod:`simcse_analysis.metrics.tokens` and :mod:`simcse_analysis.metrics.rogue`.

Protocol (every setting recorded in the JSON):

- **sentences**: all distinct sentences of STS-B train+dev+test (SentEval copy; ≈15k), or the lines of
  ``--corpus`` files; with ``max_sentences`` a seeded uniform sample of them (kept in order);
- **units**: ``word`` (default) = whole words: the word pieces a fast tokenizer assigns to one
  pre-tokenised word (``word_ids``) are merged by taking the **mean of their vectors** at each layer,
  and a type is the sequence of its piece ids. ``piece`` = every word piece is its own unit, which is
  what Ethayarajh's reference code does for BERT (it indexes ``BertTokenizer.tokenize`` output and
  never merges pieces). Special tokens ([CLS], [SEP], padding) are excluded; in ``word`` mode the last
  word of a sentence cut by ``max_length`` is dropped (it may be missing pieces);
- **types** for self-similarity and MEV: units occurring at least ``min_count`` (5) times, punctuation
  excluded (a unit whose text is all Unicode punctuation, as the reference drops spaCy ``is_punct``
  tokens); the baseline and intra-sentence similarity use every unit, punctuation included (as the
  reference, which averages all of a sentence's tokens);
- **layers**: every hidden state, ``0`` = the embedding layer's output (token + position + type
  embeddings after LayerNorm), ``L`` = the last layer;
- **exact, streamed**: one forward pass (``output_hidden_states``) per batch; the baseline, its
  per-dimension contributions, self-similarity (from per-type sums of unit vectors), intra-sentence
  similarity and the sentence-level rogue dimensions are accumulated exactly, so memory does not grow
  with the number of tokens. Only MEV needs the occurrence vectors themselves: it is computed on up to
  ``mev_cap`` seeded occurrences of each of up to ``mev_types`` seeded types, stored as float32 —
  ``≤ mev_types · mev_cap · (L+1) · d · 4`` bytes (500 · 50 · 7 · 384 · 4 ≈ 270 MB for MiniLM-L6 at most;
  far less in practice, most types being rarer than ``mev_cap``). Per-type sums take ``T · (L+1) · d · 8``
  bytes for ``T`` qualifying types;
- **sentence-level rogue dimensions**: per layer, the checkpoint's layer pooling (``avg`` = mean over
  all tokens, or the [CLS] vector for CLS poolers, as the ``anisotropy`` command), contributions over
  all distinct sentence pairs;
- **static matrix**: the input token-embedding matrix (``get_input_embeddings``), its spectrum and
  effective rank (:func:`~simcse_analysis.metrics.spectrum.spectrum`, uncentred and centred), mean-vector
  share, and, over the word pieces seen in the sentences (frequency = count there), Spearman(frequency,
  norm) and the 3-NN distance by frequency-rank bucket.

JSON (``TokenReport.to_dict()``)::

    {"schema": "simcse-analysis/token-analysis", "version": 1, "protocol": str, "settings": {...},
     "data": {"source", "files", "n_sentences"},
     "results": [{"model": {...}, "layer_pooler", "n_sentences", "n_units", "n_types", "n_mev_types",
                  "n_mev_occurrences", "layers": [TokenLayer per layer], "frequent_types": [...],
                  "embedding_matrix": {"spectrum": {"uncentered", "centered"}, ...EmbeddingMatrixSummary}}]}
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import progress
from .documents import read_document
from .errors import InputError
from .metrics.rogue import RogueDimensions, contributions_from_sums, rogue_summary, shares_from_moments
from .metrics.spectrum import Spectrum, spectrum
from .metrics.tokens import DEFAULT_RANK_EDGES, embedding_matrix_summary, mev_of_rows
from .records import TOKEN_KIND, TOKEN_SCHEMA, TOKEN_VERSION

SCHEMA = TOKEN_SCHEMA
SCHEMA_VERSION = TOKEN_VERSION
UNITS = ("word", "piece")


@dataclass
class TokenSettings:
    """Everything besides the model that determines the figures (defaults: see the module docstring)."""

    units: str = "word"
    min_count: int = 5
    max_sentences: int | None = None
    seed: int = 0
    mev_cap: int = 50
    mev_types: int = 500
    knn: int = 3
    rank_edges: tuple[int, ...] = DEFAULT_RANK_EDGES
    scatter_tokens: int = 5000
    top_dims: int = 10
    frequent_types: int = 20

    def __post_init__(self) -> None:
        if self.units not in UNITS:
            raise InputError(f"--units {self.units!r}: choose word (whole words, mean of pieces) or piece")
        for name in ("min_count", "mev_cap", "mev_types", "knn", "scatter_tokens"):
            if int(getattr(self, name)) < (2 if name in ("min_count", "mev_cap") else 1):
                raise InputError(f"--{name.replace('_', '-')} must be at least "
                                 f"{2 if name in ('min_count', 'mev_cap') else 1}, got {getattr(self, name)}")
        if self.max_sentences is not None and self.max_sentences < 2:
            raise InputError(f"--max-sentences must be at least 2, got {self.max_sentences}")
        self.rank_edges = tuple(int(e) for e in self.rank_edges)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rank_edges"] = list(self.rank_edges)
        return d


# ----------------------------------------------------------------------------------------- data
@dataclass
class TokenCorpus:
    sentences: list[str]
    source: str
    files: list[str]


def load_token_corpus(settings: TokenSettings, corpus: Sequence[str | os.PathLike[str]] = (),
                      data_dir: str | os.PathLike[str] | None = None) -> TokenCorpus:
    """The sentences to analyse: ``corpus`` files (one per line), else every distinct STS-B sentence;
    a seeded sample of ``settings.max_sentences`` of them (file order kept)."""
    from .corpora import read_text_corpus

    if corpus:
        sentences: list[str] = []
        for f in corpus:
            if Path(f).suffix.lower() in (".csv", ".tsv"):
                raise InputError(f"--corpus {f}: give a text file with one sentence per line, not a table")
            sentences += read_text_corpus(f)
        source, files = "corpus", [str(Path(f)) for f in corpus]
    else:
        from .analysis import AnalysisSettings, load_protocol_data

        data = load_protocol_data(AnalysisSettings(), data_dir)
        sentences, files = data.sentences, data.files
        source = f"STS-B {'+'.join(data.splits)} ({data.variant}), distinct sentences"
    if settings.max_sentences is not None and settings.max_sentences < len(sentences):
        keep = sorted(random.Random(settings.seed).sample(range(len(sentences)), settings.max_sentences))
        sentences = [sentences[i] for i in keep]
    if len(sentences) < 2:
        raise InputError("token analysis needs at least two sentences: give a larger --corpus")
    return TokenCorpus(sentences, source, files)


def describe_protocol(settings: TokenSettings, corpus: TokenCorpus) -> str:
    unit = ("whole words (mean of their word pieces)" if settings.units == "word"
            else "word pieces (no merging, as Ethayarajh's code)")
    return (f"{len(corpus.sentences):,} sentences ({corpus.source}"
            + (f", seeded sample of {settings.max_sentences:,}, seed {settings.seed}" if settings.max_sentences else "")
            + f"); units: {unit}, special tokens excluded; types: ≥ {settings.min_count} occurrences, punctuation "
            f"excluded; every layer (0 = embeddings); MEV on ≤ {settings.mev_cap} occurrences of ≤ "
            f"{settings.mev_types} types (seed {settings.seed})")


# ----------------------------------------------------------------------------------------- units
@dataclass
class _Units:
    """Every sentence's units: token positions, the unit each position belongs to, the unit's type."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    positions: list[np.ndarray]  # per sentence: positions that belong to a unit
    unit_of_position: list[np.ndarray]  # per sentence: local unit index of each of those positions
    unit_type: list[np.ndarray]  # per sentence: type index of each unit
    type_keys: list[tuple[int, ...]]
    type_counts: np.ndarray
    piece_counts: np.ndarray  # corpus frequency of every vocabulary id (special tokens not counted)


def _is_punctuation(text: str) -> bool:
    text = text.strip()
    return bool(text) and all(unicodedata.category(ch).startswith("P") for ch in text)


def build_units(tokenizer: Any, sentences: Sequence[str], max_length: int, units: str) -> _Units:
    """Tokenise once and group word pieces into units (see the module docstring)."""
    if not getattr(tokenizer, "is_fast", False):
        raise InputError("token analysis needs a fast (Rust) tokenizer to map word pieces to words; this checkpoint "
                         "only has a slow one: convert it (AutoTokenizer.from_pretrained(..., use_fast=True)) and "
                         "save it with the checkpoint")
    enc = tokenizer(list(sentences), truncation=True, max_length=max_length, padding=False,
                    return_special_tokens_mask=True, return_attention_mask=False)
    vocab = len(tokenizer)
    type_index: dict[tuple[int, ...], int] = {}
    counts: list[int] = []
    seen: list[int] = []
    positions, unit_of_pos, unit_type = [], [], []
    for i, ids in enumerate(enc["input_ids"]):
        special = enc["special_tokens_mask"][i]
        real = [p for p in range(len(ids)) if not special[p]]
        seen.extend(ids[p] for p in real)
        if units == "piece":
            groups = [[p] for p in real]
        else:
            word_ids = enc.word_ids(i)
            groups, last = [], None
            for p in real:
                w = word_ids[p]
                if w is None:
                    continue
                if w != last:
                    groups.append([])
                    last = w
                groups[-1].append(p)
            if len(ids) >= max_length and groups:
                groups.pop()  # truncated: the last word may be missing pieces
        pos = [p for g in groups for p in g]
        positions.append(np.asarray(pos, dtype=np.int64))
        unit_of_pos.append(np.asarray([u for u, g in enumerate(groups) for _ in g], dtype=np.int64))
        types = []
        for g in groups:
            key = tuple(ids[p] for p in g)
            t = type_index.get(key)
            if t is None:
                t = type_index[key] = len(counts)
                counts.append(0)
            counts[t] += 1
            types.append(t)
        unit_type.append(np.asarray(types, dtype=np.int64))
    piece_counts = np.bincount(np.asarray(seen, dtype=np.int64), minlength=vocab)
    return _Units(enc["input_ids"], enc.get("token_type_ids"), positions, unit_of_pos, unit_type, list(type_index),
                  np.asarray(counts, dtype=np.int64), piece_counts)


# ----------------------------------------------------------------------------------------- results
@dataclass
class TokenLayer:
    """Ethayarajh's measures and the rogue dimensions of one layer (0 = embedding layer)."""

    layer: int
    baseline: float
    self_similarity: float
    self_similarity_adjusted: float
    intra_sentence: float
    intra_sentence_adjusted: float
    mev: float
    mev_centered: float
    mean_norm: float
    token_rogue: RogueDimensions
    sentence_rogue: RogueDimensions

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["token_rogue"], d["sentence_rogue"] = self.token_rogue.to_dict(), self.sentence_rogue.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenLayer:
        return cls(**{**d, "token_rogue": RogueDimensions.from_dict(d["token_rogue"]),
                      "sentence_rogue": RogueDimensions.from_dict(d["sentence_rogue"])})


@dataclass
class TokenResult:
    """Token-level analysis of one checkpoint."""

    model: dict[str, Any]
    layer_pooler: str
    n_sentences: int
    n_units: int
    n_types: int
    n_mev_types: int
    n_mev_occurrences: int
    layers: list[TokenLayer]
    frequent_types: list[dict[str, Any]]
    embedding_matrix: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = [lay.to_dict() for lay in self.layers]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenResult:
        return cls(**{**d, "layers": [TokenLayer.from_dict(x) for x in d["layers"]]})


@dataclass
class TokenReport:
    """What ``simcse-analyze tokens --json`` writes (schema in the module docstring)."""

    protocol: str
    settings: TokenSettings
    data: dict[str, Any]
    results: list[TokenResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from .io_utils import finite_json

        return finite_json({"schema": SCHEMA, "version": SCHEMA_VERSION, "protocol": self.protocol,
                            "settings": self.settings.to_dict(), "data": self.data,
                            "results": [r.to_dict() for r in self.results]})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        from .io_utils import write_output_text

        return write_output_text(path, self.to_json())

    def __repr__(self) -> str:
        """One line: the checkpoints and the corpus size (``to_dict()`` holds everything)."""
        models = [r.model.get("model") for r in self.results]
        return f"TokenReport(models={models!r}, {self.data.get('n_sentences', '?')} sentences, {self.settings.units}s)"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenReport:
        if d.get("schema") != SCHEMA:
            raise InputError(f"not a {SCHEMA} document (schema={d.get('schema')!r})")
        s = dict(d["settings"])
        s["rank_edges"] = tuple(s.get("rank_edges", DEFAULT_RANK_EDGES))
        return cls(d["protocol"], TokenSettings(**s), d["data"], [TokenResult.from_dict(r) for r in d["results"]])

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TokenReport:
        """Read a ``tokens --json`` document (validated: :data:`~simcse_analysis.records.TOKEN_KIND`)."""
        doc = read_document(path, TOKEN_KIND)
        try:
            return cls.from_dict(doc)
        except (KeyError, TypeError) as e:
            raise InputError(f"{path}: malformed token-analysis JSON ({e}); {TOKEN_KIND.fix}") from e


# ----------------------------------------------------------------------------------------- streaming
class _Accumulator:
    """Exact running sums for every per-layer measure (torch float64 on the CPU), see the module docstring."""

    def __init__(self, n_layers: int, dim: int, n_qual: int, n_slots: int) -> None:
        import torch

        f64 = {"dtype": torch.float64}
        self.ctx_s = torch.zeros(n_layers, dim, **f64)  # Σ_s ū_s
        self.ctx_q = torch.zeros(n_layers, dim, **f64)  # Σ_s ū_s² (per dimension)
        self.n_ctx = 0
        self.intra = torch.zeros(n_layers, **f64)  # Σ_s IntraSim(s)
        self.norm_sum = torch.zeros(n_layers, **f64)
        self.tok_s = torch.zeros(n_layers, dim, **f64)  # raw moments of the units, for variance shares
        self.tok_q = torch.zeros(n_layers, dim, **f64)
        self.n_units = 0
        self.type_sums = torch.zeros(n_layers, n_qual, dim, **f64)  # Σ u over each qualifying type
        self.sent_s = torch.zeros(n_layers, dim, **f64)  # sentence vectors: Σ v̂, Σ v̂², Σ v, Σ v²
        self.sent_q = torch.zeros(n_layers, dim, **f64)
        self.sent_xs = torch.zeros(n_layers, dim, **f64)
        self.sent_xq = torch.zeros(n_layers, dim, **f64)
        self.n_sent = 0
        self.mev = np.zeros((n_layers, n_slots, dim), dtype=np.float32)

    def add(self, v: Any, sent_of_unit: Any, n_sent: int, qual: Any, slots: Any, sent_vecs: Any) -> None:
        """``v``: unit vectors ``(L+1, U, d)`` float64; ``sent_of_unit`` ``(U,)`` row in the batch; ``qual``
        ``(U,)`` qualifying-type index or −1; ``slots`` ``(U,)`` MEV slot or −1; ``sent_vecs`` ``(L+1, B, d)``."""
        import torch

        n_layers, _, dim = v.shape
        norms = v.norm(dim=-1).clamp_min(1e-30)
        u = v / norms[..., None]
        per = torch.bincount(sent_of_unit, minlength=n_sent).to(torch.float64)
        has = per > 0
        ubar = torch.zeros(n_layers, n_sent, dim, dtype=torch.float64).index_add_(1, sent_of_unit, u)
        ubar = ubar[:, has] / per[has][None, :, None]
        self.ctx_s += ubar.sum(1)
        self.ctx_q += (ubar * ubar).sum(1)
        self.n_ctx += int(has.sum())
        mean = torch.zeros(n_layers, n_sent, dim, dtype=torch.float64).index_add_(1, sent_of_unit, v)
        mean = mean / per.clamp_min(1)[None, :, None]
        mean_unit = mean / mean.norm(dim=-1, keepdim=True).clamp_min(1e-30)
        cos = (u * mean_unit[:, sent_of_unit]).sum(-1)
        per_sent = torch.zeros(n_layers, n_sent, dtype=torch.float64).index_add_(1, sent_of_unit, cos)
        self.intra += (per_sent[:, has] / per[has]).sum(1)
        self.norm_sum += norms.sum(1)
        self.tok_s += v.sum(1)
        self.tok_q += (v * v).sum(1)
        self.n_units += v.shape[1]
        q = qual >= 0
        if bool(q.any()):
            self.type_sums.index_add_(1, qual[q], u[:, q])
        s = slots >= 0
        if bool(s.any()):
            self.mev[:, slots[s].numpy()] = v[:, s].float().numpy()
        sv = sent_vecs.to(torch.float64)
        sn = sv / sv.norm(dim=-1, keepdim=True).clamp_min(1e-30)
        self.sent_s += sn.sum(1)
        self.sent_q += (sn * sn).sum(1)
        self.sent_xs += sv.sum(1)
        self.sent_xq += (sv * sv).sum(1)
        self.n_sent += sv.shape[1]


def _mev(store: np.ndarray, groups: list[np.ndarray], center: bool) -> float:
    vals = []
    for g in groups:
        x = store[g].astype(np.float64)
        if center:
            x = x - x.mean(axis=0)
        vals.append(mev_of_rows(x))
    vals = [v for v in vals if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _token_matrix(model: Any, name: str) -> np.ndarray:
    get = getattr(model, "get_input_embeddings", None)
    try:
        emb = get() if get is not None else None
    except NotImplementedError:
        emb = None
    weight = getattr(emb, "weight", None)
    if weight is None or weight.ndim != 2:
        raise InputError(f"{name} exposes no input token-embedding matrix (get_input_embeddings): token analysis "
                         "needs a transformer checkpoint with one")
    return weight.detach().float().cpu().numpy()


def analyze_tokens(encoder: Any, sentences: Sequence[str], settings: TokenSettings, *, batch_size: int = 64,
                   show_progress_bar: bool | None = None) -> TokenResult:
    """Every measure of the module docstring for one loaded :class:`~simcse_analysis.encoder.Encoder`."""
    import torch

    from .pooling import masked_mean

    name = encoder.name
    matrix = _token_matrix(encoder.model, name)
    tok = encoder.tokenizer
    units = build_units(tok, sentences, encoder.max_length, settings.units)
    type_text = [tok.convert_tokens_to_string(tok.convert_ids_to_tokens(list(k))).strip() for k in units.type_keys]
    qualifying = np.flatnonzero((units.type_counts >= settings.min_count)
                                & ~np.fromiter((_is_punctuation(t) for t in type_text), bool, len(type_text)))
    if qualifying.size == 0:
        best = int(units.type_counts.max()) if units.type_counts.size else 0
        raise InputError(f"no word type occurs at least {settings.min_count} times in the {len(sentences):,} sentences "
                         f"(the most frequent non-special unit occurs {best} times): give a larger --corpus or lower "
                         "--min-count")
    q_of_type = np.full(len(units.type_keys), -1, dtype=np.int64)
    q_of_type[qualifying] = np.arange(qualifying.size)

    # MEV sample: seeded types, then seeded occurrences of each (global unit ids in sentence order)
    offsets = np.cumsum([0] + [len(t) for t in units.unit_type])
    all_types = np.concatenate(units.unit_type) if offsets[-1] else np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(settings.seed)
    mev_types = qualifying if qualifying.size <= settings.mev_types else np.sort(
        rng.choice(qualifying, settings.mev_types, replace=False))
    slot_of_unit = np.full(int(offsets[-1]), -1, dtype=np.int64)
    groups: list[np.ndarray] = []
    order = np.argsort(all_types, kind="stable")
    starts = np.searchsorted(all_types[order], mev_types)
    slot = 0
    for t, st in zip(mev_types, starts):
        occ = order[st:st + int(units.type_counts[t])]
        if occ.size > settings.mev_cap:
            occ = np.sort(rng.choice(occ, settings.mev_cap, replace=False))
        slot_of_unit[occ] = np.arange(slot, slot + occ.size)
        groups.append(np.arange(slot, slot + occ.size))
        slot += occ.size

    model = encoder.model
    n_layers = int(model.config.num_hidden_layers) + 1
    dim = int(model.config.hidden_size)
    acc = _Accumulator(n_layers, dim, qualifying.size, slot)
    layer_pooler = "cls_before_pooler" if encoder.pooler.startswith("cls") else "avg"
    device = torch.device(encoder.device)
    lengths = np.fromiter((len(x) for x in units.input_ids), dtype=np.int64, count=len(units.input_ids))
    by_len = np.argsort(-lengths, kind="stable")
    pad_id = tok.pad_token_id or 0
    batches = progress.batches(range(0, len(by_len), batch_size), len(by_len), batch_size, show=show_progress_bar,
                               desc=f"token analysis of {len(sentences)} sentences")
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for b0 in batches:
                idx = by_len[b0:b0 + batch_size]
                width = int(lengths[idx[0]])
                ids = np.full((len(idx), width), pad_id, dtype=np.int64)
                mask = np.zeros((len(idx), width), dtype=np.int64)
                tt = np.zeros((len(idx), width), dtype=np.int64) if units.token_type_ids is not None else None
                for r, i in enumerate(idx):
                    ids[r, :lengths[i]] = units.input_ids[i]
                    mask[r, :lengths[i]] = 1
                    if tt is not None:
                        tt[r, :lengths[i]] = units.token_type_ids[i]
                inputs = {"input_ids": torch.from_numpy(ids).to(device),
                          "attention_mask": torch.from_numpy(mask).to(device)}
                if tt is not None:
                    inputs["token_type_ids"] = torch.from_numpy(tt).to(device)
                out = model(**inputs, output_hidden_states=True, return_dict=True)
                hs = out.hidden_states  # L+1 tensors (B, T, d); never stacked: only unit positions are gathered
                if layer_pooler == "avg":
                    sent_vecs = torch.stack([masked_mean(h.float(), inputs["attention_mask"]) for h in hs])
                else:
                    sent_vecs = torch.stack([h[:, 0].float() for h in hs])
                flat = np.concatenate([r * width + units.positions[i] for r, i in enumerate(idx)])
                counts_b = [int(units.unit_type[i].size) for i in idx]
                base = np.cumsum([0] + counts_b)
                unit_idx = np.concatenate([base[r] + units.unit_of_position[i] for r, i in enumerate(idx)])
                n_u = int(base[-1])
                if n_u == 0:
                    acc.add(torch.zeros(n_layers, 0, dim, dtype=torch.float64), torch.zeros(0, dtype=torch.long),
                            len(idx), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long),
                            sent_vecs.cpu())
                    continue
                flat_t = torch.from_numpy(flat).to(device)
                hf = torch.stack([h.reshape(-1, dim)[flat_t].float() for h in hs])  # (L+1, P, d)
                ui = torch.from_numpy(unit_idx).to(device)
                v = torch.zeros(n_layers, n_u, dim, device=device).index_add_(1, ui, hf)
                pieces = torch.bincount(ui, minlength=n_u).to(v.dtype)
                v = (v / pieces[None, :, None]).cpu().to(torch.float64)
                sent_of_unit = torch.from_numpy(np.repeat(np.arange(len(idx)), counts_b))
                glob = np.concatenate([offsets[i] + np.arange(units.unit_type[i].size) for i in idx])
                types_b = np.concatenate([units.unit_type[i] for i in idx])
                acc.add(v, sent_of_unit, len(idx), torch.from_numpy(q_of_type[types_b]),
                        torch.from_numpy(slot_of_unit[glob]), sent_vecs.cpu())
    finally:
        if was_training:
            model.train()
    if acc.n_ctx < 2:
        raise InputError("fewer than two sentences have any non-special token: give a larger --corpus")

    qual_counts = units.type_counts[qualifying].astype(np.float64)
    layers = []
    for lay in range(n_layers):
        contrib = contributions_from_sums(acc.ctx_s[lay].numpy(), acc.ctx_q[lay].numpy(), acc.n_ctx)
        baseline = float(contrib.sum())
        ts = acc.type_sums[lay].numpy()
        selfsim = float(np.mean((np.einsum("td,td->t", ts, ts) - qual_counts) / (qual_counts * (qual_counts - 1))))
        intra = float(acc.intra[lay]) / acc.n_ctx
        tok_shares = _shares(acc.tok_s[lay].numpy(), acc.tok_q[lay].numpy(), acc.n_units)
        sent_contrib = contributions_from_sums(acc.sent_s[lay].numpy(), acc.sent_q[lay].numpy(), acc.n_sent)
        sent_shares = _shares(acc.sent_xs[lay].numpy(), acc.sent_xq[lay].numpy(), acc.n_sent)
        layers.append(TokenLayer(
            layer=lay, baseline=baseline, self_similarity=selfsim, self_similarity_adjusted=selfsim - baseline,
            intra_sentence=intra, intra_sentence_adjusted=intra - baseline,
            mev=_mev(acc.mev[lay], groups, center=False), mev_centered=_mev(acc.mev[lay], groups, center=True),
            mean_norm=float(acc.norm_sum[lay]) / max(acc.n_units, 1),
            token_rogue=rogue_summary(contrib, tok_shares, top=settings.top_dims),
            sentence_rogue=rogue_summary(sent_contrib, sent_shares, top=settings.top_dims)))

    top_types = qualifying[np.argsort(-units.type_counts[qualifying], kind="stable")[:settings.frequent_types]]
    frequent = []
    for t in top_types:
        q = q_of_type[t]
        n = float(units.type_counts[t])
        per_layer = [float((acc.type_sums[lay, q].numpy() @ acc.type_sums[lay, q].numpy() - n) / (n * (n - 1)))
                     for lay in range(n_layers)]
        frequent.append({"type": type_text[t], "count": int(n), "self_similarity": per_layer})

    specials = [i for i in getattr(tok, "all_special_ids", []) if 0 <= i < matrix.shape[0]]
    names = tok.convert_ids_to_tokens(list(range(matrix.shape[0])))
    counts = units.piece_counts[:matrix.shape[0]] if units.piece_counts.size >= matrix.shape[0] else np.pad(
        units.piece_counts, (0, matrix.shape[0] - units.piece_counts.size))
    summary = embedding_matrix_summary(matrix, counts, [n if n is not None else "" for n in names], exclude=specials,
                                       k=settings.knn, edges=settings.rank_edges, scatter=settings.scatter_tokens)
    em = summary.to_dict()
    em["spectrum"] = {"uncentered": _spectrum(matrix, False), "centered": _spectrum(matrix, True)}
    return TokenResult(
        model=encoder.describe(), layer_pooler=layer_pooler, n_sentences=len(sentences), n_units=acc.n_units,
        n_types=int(qualifying.size), n_mev_types=len(groups), n_mev_occurrences=int(slot), layers=layers,
        frequent_types=frequent, embedding_matrix=em)


def _shares(s: np.ndarray, q: np.ndarray, n: int) -> np.ndarray | None:
    try:
        return shares_from_moments(s, q, n)
    except InputError:  # no spread (e.g. layer 0's [CLS] vector is the same for every sentence)
        return None


def _spectrum(matrix: np.ndarray, center: bool) -> dict[str, Any]:
    sp: Spectrum = spectrum(matrix, center=center)
    return sp.to_dict()


def token_cache_key(encoder: Any, sentences: Sequence[str], settings: TokenSettings) -> dict[str, Any] | None:
    """Everything a :class:`TokenResult` depends on, as the key of its cache entry; ``None`` when the encoder has
    no cache (``--no-cache``, an in-memory model): the weights and how they encode (the embedding namespace's
    settings: fingerprint, max length, dtype), the layer pooling, the settings, the sentences (digest) and the
    code that computes the figures (digest of its modules' source)."""
    from . import pooling
    from .cache import code_digest, texts_digest
    from .metrics import rogue, spectrum, tokens

    if getattr(encoder, "cache", None) is None or getattr(encoder, "weights_fingerprint", None) is None:
        return None
    layer_pooler = "cls_before_pooler" if encoder.pooler.startswith("cls") else "avg"
    return {"encoding": encoder.cache_settings("tokens", layer_pooler), "settings": settings.to_dict(),
            "sentences": texts_digest(sentences), "n_sentences": len(sentences), "schema": SCHEMA_VERSION,
            "code": code_digest(sys.modules[__name__], tokens, rogue, spectrum, pooling)}


def analyze_tokens_cached(encoder: Any, sentences: Sequence[str], settings: TokenSettings, *, batch_size: int = 64,
                          show_progress_bar: bool | None = None) -> tuple[TokenResult, bool]:
    """:func:`analyze_tokens` through the encoder's result cache (:class:`~simcse_analysis.cache.ResultCache`,
    kind ``tokens``, key :func:`token_cache_key`) → ``(result, whether it came from the cache)``. A cached
    result gets this encoder's ``model`` description (its name and path may differ from the one that wrote it)."""
    key = token_cache_key(encoder, sentences, settings)
    results = encoder.cache.results if key is not None else None
    if results is not None:
        hit = results.get("tokens", key)
        if hit is not None:
            try:
                return TokenResult.from_dict({**hit, "model": encoder.describe()}), True
            except (KeyError, TypeError):  # an entry of another shape under the same key: recompute
                pass
    result = analyze_tokens(encoder, sentences, settings, batch_size=batch_size, show_progress_bar=show_progress_bar)
    if results is not None:
        results.put("tokens", key, result.to_dict(), checkpoint=encoder.cache_label())
    return result, False


def run_token_analysis(models: Iterable[Any], corpus: TokenCorpus, settings: TokenSettings, *, batch_size: int = 64,
                       log: Callable[[str], None] | None = None, n_models: int | None = None) -> TokenReport:
    """:func:`analyze_tokens` for each encoder of ``models`` (a generator may load each one lazily;
    ``n_models``: how many it yields, for the progress job's plan and labels), read from the result cache
    where the same analysis was done before (:func:`analyze_tokens_cached`).

    The analysis depends on the weights and the per-layer pooling (token mean, or [CLS] for CLS poolers),
    not on the sentence pooler: an encoder with the same weights (fingerprint) and per-layer pooling as an
    earlier one reuses its result under its own model description instead of analysing again."""
    from dataclasses import replace

    say = log or (lambda msg: None)
    results = []
    done: dict[tuple[str, str], TokenResult] = {}
    if n_models is None and isinstance(models, Sequence):
        n_models = len(models)
    n = len(corpus.sentences)
    with progress.job("tokens"):  # the command's job, else its own
        progress.plan((n_models or 0) * n)
        for i, enc in enumerate(models, start=1):
            key = (getattr(enc, "fingerprint", None), "cls_before_pooler" if enc.pooler.startswith("cls") else "avg")
            if key[0] and key in done:
                results.append(replace(done[key], model=enc.describe()))
                progress.advance(n if n_models else 0)  # its planned work is done
                say(f"{enc.name}: the same weights and per-layer pooling as an earlier checkpoint; its token "
                    "analysis reused")
                continue
            with progress.section(f"[{i}/{n_models or '?'} {enc.name}@{enc.pooler}]"), progress.stage(
                    progress.sentences_label("tokens of every layer", n), n if n_models else None):
                result, cached = analyze_tokens_cached(enc, corpus.sentences, settings, batch_size=batch_size)
            results.append(result)
            done[key] = result
            say(f"{'read the cached token analysis' if cached else 'analysed the tokens'} of {n:,} sentences "
                f"with {enc.name}")
    data = {"source": corpus.source, "files": corpus.files, "n_sentences": len(corpus.sentences)}
    return TokenReport(describe_protocol(settings, corpus), settings, data, results)
