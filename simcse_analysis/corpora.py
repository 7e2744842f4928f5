"""Training corpora: one sentence per line (unsupervised SimCSE) and ``sent0,sent1[,hard_neg]`` CSV.

Text files. The SimCSE reference loads ``wiki1m_for_simcse.txt`` with the Hugging Face ``text``
builder: one example per line, the line break removed, nothing else touched, empty lines kept as empty
examples. Here lines are split on ``\\n`` (a trailing ``\\r`` is dropped, so CRLF files read the same) and
kept verbatim, but blank (empty or whitespace-only) lines are **skipped by default**: an empty "sentence"
is a degenerate positive pair, and several of them in one batch become identical false negatives.
``skip_empty=False`` reproduces the reference exactly (the paper's corpus has no blank lines).

CSV files. As in the reference (HF ``csv`` builder, ``delimiter="\\t"`` for ``.tsv``), the first row is a
header and columns are taken by position: 2 = ``sent0, sent1`` (positive pairs), 3 = ``sent0, sent1,
hard_neg`` (supervised SimCSE with a hard negative) — unless the header uses these names, which are then
read by name (:func:`pair_column_order`); a header that contradicts itself or the positions is refused.
The reference also accepts a 1-column CSV of single sentences; here those belong in a ``.txt`` file. Standard CSV quoting applies (sentences may contain
commas and quotes); blank lines are skipped.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError


@dataclass(frozen=True, eq=False)
class PairCorpus:
    """Parallel columns of a CSV corpus: ``sent1[i]`` is a positive of ``sent0[i]``; ``hard_neg[i]``
    (if present) a hard negative of it. ``columns`` holds the header names as written."""

    sent0: list[str]
    sent1: list[str]
    hard_neg: list[str] | None
    columns: tuple[str, ...]
    path: str

    def __len__(self) -> int:
        return len(self.sent0)


def _read_text(path: Path, what: str) -> str:
    if not path.is_file():
        raise InputError(f"{what} {path} does not exist: pass an existing file "
                         "(or fetch the SimCSE corpora with `simcse-analyze data --download`)")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror or e}; check its permissions") from e
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InputError(f"{what} {path} line {line} is not UTF-8: re-save the file as UTF-8") from e


def split_lines(text: str) -> list[str]:
    """Lines of a text file, verbatim: split on ``\n``, a final newline ends the last line, ``\r`` dropped."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.removesuffix("\r") for ln in lines]


def read_text_corpus(path: str | os.PathLike[str], *, skip_empty: bool = True,
                     limit: int | None = None) -> list[str]:
    """Sentences of a one-sentence-per-line UTF-8 file (at most ``limit``), lines kept verbatim.

    Raises :class:`InputError` if the file is missing, not UTF-8 or holds no sentence.
    """
    p = Path(path)
    text = _read_text(p, "corpus file")
    out: list[str] = []
    for ln in split_lines(text):
        if skip_empty and not ln.strip():
            continue
        out.append(ln)
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise InputError(f"corpus file {p} holds no sentences: give a UTF-8 text file with one sentence per line")
    return out


#: The column names of a pair corpus, in their positional order (the SimCSE reference's NLI file header).
PAIR_COLUMNS = ("sent0", "sent1", "hard_neg")


def pair_column_order(header: list[str], path: Path) -> list[int]:
    """Which file column holds ``sent0``, ``sent1`` (and ``hard_neg``): read by name when every header name
    is a known one (``sent1,sent0`` is read swapped), by position when none is (any other names).

    Raises :class:`InputError` for a header that names known columns but not as a pair corpus can be read:
    a repeated name, a mix of known and unknown names that disagrees with the positions, or known names
    without both ``sent0`` and ``sent1`` (``sent0,hard_neg`` would otherwise train on the hard negatives
    as positives).
    """
    names = [h.strip().lower() for h in header]
    known = [n for n in names if n in PAIR_COLUMNS]
    if not known:
        return list(range(len(header)))
    expected = ",".join(PAIR_COLUMNS[:len(header)])
    if len(set(known)) != len(known):
        raise InputError(f"pair corpus {path} line 1: header {','.join(header)} repeats a column name; expected "
                         f"{expected}")
    if len(known) == len(names):
        if "sent0" not in names or "sent1" not in names:
            raise InputError(f"pair corpus {path} line 1: header {','.join(header)} has no "
                             f"{'sent0' if 'sent0' not in names else 'sent1'} column, so the columns cannot be "
                             f"read as a sentence and its positive: name them {expected}")
        return [names.index(c) for c in PAIR_COLUMNS[:len(names)]]
    wrong = [(i, n) for i, n in enumerate(names) if n in PAIR_COLUMNS and PAIR_COLUMNS.index(n) != i]
    if wrong:
        i, n = wrong[0]
        raise InputError(f"pair corpus {path} line 1: header {','.join(header)} names column {i + 1} {n!r}, but "
                         f"columns are read by position as {expected}: rename or reorder the columns")
    return list(range(len(header)))


def read_pair_corpus(path: str | os.PathLike[str], *, limit: int | None = None) -> PairCorpus:
    """Rows of a CSV (TSV for ``.tsv``) with a header and 2 or 3 columns: ``sent0,sent1[,hard_neg]``.

    Raises :class:`InputError` naming the file and line for a missing file, a bad header, a row with the
    wrong number of fields, or a file without data rows.
    """
    p = Path(path)
    text = _read_text(p, "pair corpus")
    delimiter = "\t" if p.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise InputError(f"pair corpus {p} is empty: expected a header 'sent0,sent1[,hard_neg]' and rows")
        if len(header) not in (2, 3):
            raise InputError(f"pair corpus {p} line 1: header has {len(header)} column(s); expected "
                             "'sent0,sent1' or 'sent0,sent1,hard_neg' (use a .txt file for single sentences)")
        pair_column_order(header, p)  # a contradicting header fails before the rows are read
        cols: list[list[str]] = [[] for _ in header]
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) != len(header):
                raise InputError(f"pair corpus {p} line {reader.line_num}: {len(row)} field(s), expected "
                                 f"{len(header)} like the header {','.join(header)}; quote fields that "
                                 "contain the delimiter")
            for c, v in zip(cols, row):
                c.append(v)
            if limit is not None and len(cols[0]) >= limit:
                break
    except csv.Error as e:
        raise InputError(f"pair corpus {p} line {reader.line_num}: malformed CSV ({e}); fix the quoting") from e
    if not cols[0]:
        raise InputError(f"pair corpus {p} has a header but no rows: add 'sent0,sent1[,hard_neg]' rows")
    order = pair_column_order(header, p)
    cols = [cols[i] for i in order]
    return PairCorpus(cols[0], cols[1], cols[2] if len(cols) == 3 else None,
                      tuple(header[i].strip() for i in order), str(p))


def read_corpus(path: str | os.PathLike[str], **kwargs) -> list[str] | PairCorpus:
    """``.csv``/``.tsv`` -> :func:`read_pair_corpus`; anything else -> :func:`read_text_corpus`."""
    if Path(path).suffix.lower() in (".csv", ".tsv"):
        kwargs.pop("skip_empty", None)
        return read_pair_corpus(path, **kwargs)
    return read_text_corpus(path, **kwargs)
