"""Training-corpus readers: one sentence per line, and sent0,sent1[,hard_neg] CSV."""

from __future__ import annotations

import csv

import pytest

from simcse_analysis.corpora import read_corpus, read_pair_corpus, read_text_corpus
from simcse_analysis.errors import InputError


def test_text_corpus_has_one_sentence_per_nonblank_line(data_dir):
    path = data_dir / "unsup" / "wiki1m_for_simcse.head.txt"
    sents = read_text_corpus(path)
    lines = path.read_text(encoding="utf-8").split("\n")
    assert sents == [ln for ln in lines if ln.strip()]
    assert len(sents) == 11914  # SOURCES.md


def test_blank_lines_are_skipped_unless_asked_to_keep_them(tmp_path):
    p = tmp_path / "c.txt"
    p.write_bytes(b"first sentence\r\n\r\n  \nsecond one \nthird\n")
    assert read_text_corpus(p) == ["first sentence", "second one ", "third"]
    assert read_text_corpus(p, skip_empty=False) == ["first sentence", "", "  ", "second one ", "third"]
    assert read_text_corpus(p, limit=2) == ["first sentence", "second one "]


def test_file_without_trailing_newline_keeps_its_last_line(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("a\nb", encoding="utf-8")
    assert read_text_corpus(p) == ["a", "b"]


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_text_corpus_is_an_input_error(tmp_path, content):
    p = tmp_path / "empty.txt"
    p.write_bytes(content)
    with pytest.raises(InputError, match="empty.txt holds no sentences"):
        read_text_corpus(p)


def test_missing_corpus_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_text_corpus(tmp_path / "nope.txt")


def test_non_utf8_corpus_names_the_line(tmp_path):
    p = tmp_path / "latin1.txt"
    p.write_bytes("ok\nalso ok\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="latin1.txt line 3 is not UTF-8"):
        read_text_corpus(p)


def test_triplet_csv_reads_three_parallel_columns(data_dir):
    path = data_dir / "nli" / "snli_devtest_triplets.csv"
    corpus = read_pair_corpus(path)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(corpus) == len(rows) == 6503
    assert corpus.columns == ("sent0", "sent1", "hard_neg")
    assert (corpus.sent0[1], corpus.sent1[1], corpus.hard_neg[1]) == (
        rows[1]["sent0"], rows[1]["sent1"], rows[1]["hard_neg"])
    assert "," in corpus.sent0[1]  # a quoted field with commas survives


def test_pair_csv_without_hard_negatives(tmp_path):
    p = tmp_path / "pairs.csv"
    p.write_text('sent0,sent1\n"a, b",c\nd,"say ""hi"""\n\n', encoding="utf-8")
    corpus = read_corpus(p)
    assert corpus.sent0 == ["a, b", "d"] and corpus.sent1 == ["c", 'say "hi"'] and corpus.hard_neg is None


def test_tsv_uses_tabs(tmp_path):
    p = tmp_path / "pairs.tsv"
    p.write_text("sent0\tsent1\thard_neg\na, b\tc\td\n", encoding="utf-8")
    corpus = read_corpus(p)
    assert (corpus.sent0, corpus.sent1, corpus.hard_neg) == (["a, b"], ["c"], ["d"])


def test_ragged_row_names_file_and_line(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("sent0,sent1,hard_neg\na,b,c\nd,e\n", encoding="utf-8")
    with pytest.raises(InputError, match="bad.csv line 3: 2 field"):
        read_pair_corpus(p)


def test_quoted_newline_counts_toward_the_reported_line(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text('sent0,sent1\n"multi\nline",b\nonly-one\n', encoding="utf-8")
    with pytest.raises(InputError, match="bad.csv line 4"):
        read_pair_corpus(p)


@pytest.mark.parametrize(("content", "message"), [
    ("", "is empty"),
    ("sent0,sent1\n", "has a header but no rows"),
    ("sentence\nhello\n", "header has 1 column"),
    ("a,b,c,d\n1,2,3,4\n", "header has 4 column"),
])
def test_malformed_or_empty_csv_is_an_input_error(tmp_path, content, message):
    p = tmp_path / "x.csv"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_pair_corpus(p)
