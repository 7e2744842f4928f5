"""STS evaluation data: STS12–16, STS Benchmark and SICK-Relatedness, raw and SentEval copies.

Layout under the data directory (see :mod:`simcse_analysis.datadir`)::

    sts/sts12 … sts/sts16/{raw,senteval}/STS.input.X.txt + STS.gs.X.txt   (STS16 raw: STS2016.*)
    sts/stsb/sts-{train,dev,test}.csv            raw STS Benchmark release
    sts/stsb/senteval/sts-{train,dev,test}.csv   SentEval copy (Moses-tokenised, lowercased)
    sts/sick/SICK_{train,trial,test_annotated}.txt            raw SICK release
    sts/sick/senteval/SICK_{train,trial,test_annotated}.txt   SentEval copy, if present (optional)

Variants. ``senteval`` (the default, what the SimCSE paper's numbers use) reads the
SentEval-preprocessed copies; ``raw`` reads the official releases. SentEval splits each sentence on
whitespace and its batcher re-joins the tokens with single spaces, so the ``senteval`` variant
collapses runs of whitespace the same way; ``raw`` sentences are kept as released, minus surrounding
whitespace. **SICK-R has no SentEval copy in the offline data** (SentEval's copy is only Moses-tokenised,
not lowercased): with ``variant="senteval"`` and no ``sts/sick/senteval/`` directory, SICK-R falls back to
the raw release, and :attr:`STSSubset.variant` says ``"raw"`` so results can record what was read.

Parsing rules, following SentEval (``senteval/sts.py``):

* STS12–16: line *i* of ``STS.input.X.txt`` (TAB-separated; columns 0 and 1 are the sentences, STS16
  raw has two extra attribution columns) pairs with line *i* of ``STS.gs.X.txt``. An empty gold line
  marks an unscored pair, which is skipped (this happens in STS15 and STS16 only).
* STS Benchmark: TAB-separated, no header, columns 0–6 ``genre file year id score s1 s2``; some raw
  rows carry extra trailing columns (licence notes), which are ignored. No quoting (``csv.QUOTE_NONE``):
  sentences contain quote characters.
* SICK: TAB-separated with a header ``pair_ID sentence_A sentence_B relatedness_score
  entailment_judgment``; the test file has CRLF line endings. ``dev`` is the trial file.

Scores are on the datasets' own scales: [0, 5] for STS, [1, 5] for SICK; a score outside its scale is
refused (:data:`SCORE_RANGES`).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datadir import resolve_data_dir
from .errors import InputError

TASKS: tuple[str, ...] = ("STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICKRelatedness")
VARIANTS: tuple[str, ...] = ("senteval", "raw")
SPLITS: tuple[str, ...] = ("train", "dev", "test")

#: Sub-datasets of the SemEval tasks, in SentEval's order (STS13 without the LDC-licensed SMT).
SUBSETS: dict[str, tuple[str, ...]] = {
    "STS12": ("MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"),
    "STS13": ("FNWN", "headlines", "OnWN"),
    "STS14": ("deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"),
    "STS15": ("answers-forums", "answers-students", "belief", "headlines", "images"),
    "STS16": ("answer-answer", "headlines", "plagiarism", "postediting", "question-question"),
}
SEMEVAL_TASKS: tuple[str, ...] = tuple(SUBSETS)

#: Directory of each task under the data directory.
TASK_DIRS: dict[str, str] = {
    "STS12": "sts/sts12", "STS13": "sts/sts13", "STS14": "sts/sts14", "STS15": "sts/sts15",
    "STS16": "sts/sts16", "STSBenchmark": "sts/stsb", "SICKRelatedness": "sts/sick",
}

_STSB_FILES = {"train": "sts-train.csv", "dev": "sts-dev.csv", "test": "sts-test.csv"}
_SICK_FILES = {"train": "SICK_train.txt", "dev": "SICK_trial.txt", "test": "SICK_test_annotated.txt"}

_ALIASES: dict[str, str] = {}
for _t in TASKS:
    _ALIASES[_t.lower()] = _t
for _n in range(12, 17):
    _ALIASES[f"sts{_n}"] = _ALIASES[f"sts-{_n}"] = _ALIASES[f"sts20{_n}"] = f"STS{_n}"
_ALIASES.update({a: "STSBenchmark" for a in ("sts-b", "stsb", "sts_b", "stsbenchmark", "sts-benchmark")})
_ALIASES.update({a: "SICKRelatedness" for a in ("sick-r", "sickr", "sick_r", "sick", "sick-relatedness",
                                                "sickrelatedness")})
_SPLIT_ALIASES = {"train": "train", "dev": "dev", "trial": "dev", "validation": "dev", "valid": "dev",
                  "test": "test"}


class MissingDataError(InputError):
    """A data file the task needs is not under the data directory (``simcse-analyze data`` lists them)."""


@dataclass(frozen=True, eq=False)
class STSSubset:
    """Scored sentence pairs of one sub-dataset (STS12–16) or one split (STS-B, SICK-R).

    ``scores[i]`` is the gold similarity of ``(sentences1[i], sentences2[i])``; ``variant`` is the copy
    actually read (``"raw"`` when SICK-R falls back); ``files`` the files it came from.
    """

    task: str
    subset: str
    split: str
    variant: str
    sentences1: tuple[str, ...]
    sentences2: tuple[str, ...]
    scores: np.ndarray
    files: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.scores)


# ----------------------------------------------------------------------------------------- names
def canonical_task(name: str) -> str:
    """Canonical task name for ``name`` (case-insensitive; aliases like ``sts-b``, ``stsb``, ``sickr``)."""
    key = str(name).strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    raise InputError(f"unknown STS task {name!r}: choose from {', '.join(TASKS)} (aliases: sts-b, sick-r)")


def parse_tasks(spec: str | Iterable[str] | None) -> list[str]:
    """Task list from ``"STS12,stsb"`` or an iterable of names (each may hold commas); ``None`` = all.

    Duplicates are dropped; the order is the canonical :data:`TASKS` order.
    """
    if spec is None:
        return list(TASKS)
    items = [spec] if isinstance(spec, str) else list(spec)
    names = [p for item in items for p in str(item).split(",") if p.strip()]
    if not names:
        raise InputError("no STS task given: pass e.g. --tasks STS12,STSBenchmark")
    chosen = {canonical_task(n) for n in names}
    return [t for t in TASKS if t in chosen]


def canonical_split(split: str) -> str:
    """``train`` | ``dev`` | ``test`` (``trial``/``validation`` mean ``dev``)."""
    key = str(split).strip().lower()
    if key not in _SPLIT_ALIASES:
        raise InputError(f"unknown split {split!r}: choose train, dev or test")
    return _SPLIT_ALIASES[key]


def check_variant(variant: str) -> str:
    """Return ``variant`` if it is ``senteval`` or ``raw``, else raise :class:`InputError`."""
    v = str(variant).strip().lower()
    if v not in VARIANTS:
        raise InputError(f"unknown data variant {variant!r}: choose senteval or raw")
    return v


def task_splits(task: str) -> tuple[str, ...]:
    """Splits a task has: STS12–16 are test sets only; STS-B and SICK-R have train/dev/test."""
    return ("test",) if canonical_task(task) in SUBSETS else SPLITS


# ----------------------------------------------------------------------------------------- files
def _task_dir(task: str, data_dir: Path) -> Path:
    return data_dir / TASK_DIRS[task]


def resolve_variant(task: str, data_dir: Path, variant: str) -> str:
    """The variant that will actually be read: SICK-R's ``senteval`` falls back to ``raw`` if absent."""
    task, variant = canonical_task(task), check_variant(variant)
    if task == "SICKRelatedness" and variant == "senteval" and not (_task_dir(task, data_dir) / "senteval").is_dir():
        return "raw"
    return variant


def task_files(task: str, data_dir: str | os.PathLike[str], split: str = "test",
               variant: str = "senteval") -> list[tuple[str, tuple[Path, ...]]]:
    """``[(subset, files)]`` a task/split/variant reads: ``(input, gold)`` for STS12–16, else one file."""
    task, split, data_dir = canonical_task(task), canonical_split(split), Path(data_dir)
    variant = resolve_variant(task, data_dir, variant)
    if split not in task_splits(task):
        raise InputError(f"{task} has only a test split, not {split!r}: use --split test "
                         "(train/dev exist for STSBenchmark and SICKRelatedness)")
    base = _task_dir(task, data_dir)
    if task in SUBSETS:
        d = base / variant
        prefix = "STS2016" if (task == "STS16" and variant == "raw") else "STS"
        return [(s, (d / f"{prefix}.input.{s}.txt", d / f"{prefix}.gs.{s}.txt")) for s in SUBSETS[task]]
    names = _STSB_FILES if task == "STSBenchmark" else _SICK_FILES
    d = base / "senteval" if variant == "senteval" else base
    return [(split, (d / names[split],))]


def _read_lines(path: Path, what: str) -> list[str]:
    """Lines of a UTF-8 file without line terminators (LF or CRLF) and without a BOM."""
    if not path.is_file():
        raise MissingDataError(
            f"{what} file {path} is missing: run `simcse-analyze data --download`, or pass --data-dir "
            "(or set $SIMCSE_DATA) to a directory with the sts/ layout (`simcse-analyze data` lists it)")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read {what} file {path}: {e.strerror or e}; check its permissions") from e
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InputError(f"{what} file {path} line {line} is not UTF-8: re-save the file as UTF-8") from e
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.removesuffix("\r") for ln in lines]


#: The gold-score scale of each task (inclusive): STS annotators rate 0–5, SICK relatedness 1–5.
SCORE_RANGES: dict[str, tuple[float, float]] = {**{t: (0.0, 5.0) for t in TASKS}, "SICKRelatedness": (1.0, 5.0)}


def _score(value: str, path: Path, lineno: int, what: str, task: str) -> float:
    try:
        x = float(value)
    except ValueError:
        x = math.nan
    if not math.isfinite(x):
        raise InputError(f"{what} file {path} line {lineno}: gold score {value.strip()!r} is not a number; "
                         "fix the line or restore the file (`simcse-analyze data --download`)")
    lo, hi = SCORE_RANGES[task]
    if not lo <= x <= hi:
        raise InputError(f"{what} file {path} line {lineno}: gold score {value.strip()} is outside the task's "
                         f"scale [{lo:g}, {hi:g}]; fix the line or restore the file (`simcse-analyze data --download`)")
    return x


def _clean(sentence: str, variant: str) -> str:
    """SentEval splits on whitespace and joins with one space; raw text is only stripped."""
    return " ".join(sentence.split()) if variant == "senteval" else sentence.strip()


def _empty_error(what: str, path: Path) -> InputError:
    return InputError(f"{what} file {path} holds no scored sentence pairs: restore it "
                      "(`simcse-analyze data --download`) or point --data-dir at a complete copy")


def _load_semeval(task: str, subset: str, variant: str, input_path: Path, gold_path: Path) -> STSSubset:
    what = f"{task} {subset} ({variant})"
    inputs = _read_lines(input_path, what)
    golds = _read_lines(gold_path, what)
    if not inputs:
        raise _empty_error(what, input_path)
    if len(inputs) != len(golds):
        raise InputError(f"{what}: {input_path} has {len(inputs)} lines but {gold_path} has {len(golds)}; "
                         "line i of the input must pair with line i of the gold file: restore both files")
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    for i, (line, gold) in enumerate(zip(inputs, golds), start=1):
        cols = line.split("\t")
        if len(cols) < 2:
            raise InputError(f"{what} file {input_path} line {i}: expected 2 TAB-separated sentences, found "
                             f"{len(cols)} column(s); fix the line or restore the file")
        if not gold.strip():  # unscored pair: skipped, as SentEval does
            continue
        scores.append(_score(gold, gold_path, i, what, task))
        s1.append(_clean(cols[0], variant))
        s2.append(_clean(cols[1], variant))
    if not scores:
        raise _empty_error(what, gold_path)
    return _make(task, subset, "test", variant, s1, s2, scores, (input_path, gold_path))


def _load_table(task: str, split: str, variant: str, path: Path) -> STSSubset:
    """STS-B (columns 4, 5, 6; no header) or SICK (columns 3, 1, 2; header)."""
    what = f"{task} {split} ({variant})"
    if task == "STSBenchmark":
        score_col, a_col, b_col, header = 4, 5, 6, False
    else:
        score_col, a_col, b_col, header = 3, 1, 2, True
    lines = _read_lines(path, what)
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    rows = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    for i, cols in enumerate(rows, start=1):
        if header and i == 1:
            if len(cols) < 4 or cols[score_col].strip().lower() != "relatedness_score":
                raise InputError(f"{what} file {path} line 1: expected the SICK header 'pair_ID sentence_A "
                                 "sentence_B relatedness_score ...'; restore the original file")
            continue
        if not any(c.strip() for c in cols):  # blank line
            continue
        if len(cols) <= b_col:
            raise InputError(f"{what} file {path} line {i}: expected at least {b_col + 1} TAB-separated "
                             f"columns, found {len(cols)}; fix the line or restore the file")
        scores.append(_score(cols[score_col], path, i, what, task))
        s1.append(_clean(cols[a_col], variant))
        s2.append(_clean(cols[b_col], variant))
    if not scores:
        raise _empty_error(what, path)
    return _make(task, split, split, variant, s1, s2, scores, (path,))


def _make(task: str, subset: str, split: str, variant: str, s1: list[str], s2: list[str],
          scores: list[float], files: Sequence[Path]) -> STSSubset:
    arr = np.asarray(scores, dtype=np.float64)
    arr.setflags(write=False)  # subsets are cached and shared
    return STSSubset(task, subset, split, variant, tuple(s1), tuple(s2), arr, tuple(str(f) for f in files))


# Parsed subsets keyed by file identity (path, size, mtime): repeated evaluations (e.g. STS-B dev every
# few hundred training steps) do not re-parse, and an edited file is re-read.
_CACHE: dict[tuple, STSSubset] = {}


def _file_key(paths: Sequence[Path]) -> tuple:
    key = []
    for p in paths:
        try:
            st = p.stat()
            key.append((str(p.resolve()), st.st_size, st.st_mtime_ns))
        except OSError:
            key.append((str(p), None, None))
    return tuple(key)


def load_sts(task: str, data_dir: str | os.PathLike[str] | None = None, split: str = "test",
             variant: str = "senteval") -> list[STSSubset]:
    """Load one task's scored pairs: one :class:`STSSubset` per sub-dataset (STS12–16) or the one split.

    ``data_dir`` defaults to ``$SIMCSE_DATA`` / the per-user data directory. Missing, empty or malformed
    files raise :class:`InputError` naming the file and the fix.
    """
    task, split, variant = canonical_task(task), canonical_split(split), check_variant(variant)
    root = resolve_data_dir(data_dir)
    used = resolve_variant(task, root, variant)
    out: list[STSSubset] = []
    for subset, files in task_files(task, root, split, used):
        key = (task, subset, split, used, _file_key(files))
        if key not in _CACHE:
            if task in SUBSETS:
                _CACHE[key] = _load_semeval(task, subset, used, files[0], files[1])
            else:
                _CACHE[key] = _load_table(task, split, used, files[0])
        out.append(_CACHE[key])
    return out


def load_all(tasks: str | Iterable[str] | None = None, data_dir: str | os.PathLike[str] | None = None,
             split: str = "test", variant: str = "senteval") -> dict[str, list[STSSubset]]:
    """``{task: load_sts(task, ...)}`` for several tasks (``None`` = all of :data:`TASKS`)."""
    return {t: load_sts(t, data_dir, split, variant) for t in parse_tasks(tasks)}


@dataclass(frozen=True)
class DataStatus:
    """Presence of one task/variant/split: ``status`` is ``ok``, ``missing`` or ``malformed``."""

    task: str
    variant: str
    split: str
    status: str
    pairs: int | None
    subsets: int
    used_variant: str | None
    detail: str


def data_status(data_dir: str | os.PathLike[str]) -> list[DataStatus]:
    """What is present under ``data_dir``: one row per task, variant and split, with scored-pair counts."""
    root = Path(data_dir)
    rows: list[DataStatus] = []
    for task in TASKS:
        for variant in VARIANTS:
            for split in task_splits(task):
                used = resolve_variant(task, root, variant)
                try:
                    subsets = load_sts(task, root, split, variant)
                except MissingDataError as e:
                    rows.append(DataStatus(task, variant, split, "missing", None, 0, used, str(e)))
                    continue
                except InputError as e:
                    rows.append(DataStatus(task, variant, split, "malformed", None, 0, used, str(e)))
                    continue
                detail = "raw release read: no SentEval copy" if used != variant else ""
                rows.append(DataStatus(task, variant, split, "ok", sum(len(s) for s in subsets),
                                       len(subsets), used, detail))
    return rows
