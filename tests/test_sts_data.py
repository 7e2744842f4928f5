"""STS loaders: SentEval sizes, unscored-pair skipping, file formats, aliases and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from simcse_analysis.errors import InputError
from simcse_analysis.sts_data import (
    SUBSETS,
    TASKS,
    MissingDataError,
    canonical_task,
    load_sts,
    parse_tasks,
    task_files,
)

EXPECTED = {  # scored pairs per task and split, as SentEval / SimCSE report them
    ("STS12", "test"): 3108, ("STS13", "test"): 1500, ("STS14", "test"): 3750, ("STS15", "test"): 3000,
    ("STS16", "test"): 1186,
    ("STSBenchmark", "train"): 5749, ("STSBenchmark", "dev"): 1500, ("STSBenchmark", "test"): 1379,
    ("SICKRelatedness", "train"): 4500, ("SICKRelatedness", "dev"): 500, ("SICKRelatedness", "test"): 4927,
}


@pytest.fixture()
def small_copy(tmp_path, small_data_dir) -> Path:
    """A private, writable copy of the cut-down STS data."""
    dst = tmp_path / "data"
    shutil.copytree(small_data_dir, dst)
    return dst


@pytest.mark.parametrize("variant", ["senteval", "raw"])
@pytest.mark.parametrize(("task", "split"), list(EXPECTED))
def test_scored_pair_counts_match_the_senteval_sizes(data_dir, task, split, variant):
    subsets = load_sts(task, data_dir, split, variant)
    assert sum(len(s) for s in subsets) == EXPECTED[task, split]
    for s in subsets:
        assert len(s.sentences1) == len(s.sentences2) == len(s.scores)
        assert np.isfinite(s.scores).all()


@pytest.mark.parametrize("task", ["STS15", "STS16"])
def test_pairs_with_empty_gold_lines_are_skipped(data_dir, task):
    for s, (_, (inp, gold)) in zip(load_sts(task, data_dir), task_files(task, data_dir)):
        gold_lines = gold.read_text(encoding="utf-8").split("\n")[:-1]
        input_lines = inp.read_text(encoding="utf-8").split("\n")[:-1]
        scored = [i for i, g in enumerate(gold_lines) if g.strip()]
        assert len(input_lines) == len(gold_lines) > len(scored)  # these files do hold unscored pairs
        np.testing.assert_array_equal(s.scores, [float(gold_lines[i]) for i in scored])
        assert list(s.sentences1) == [" ".join(input_lines[i].split("\t")[0].split()) for i in scored]


def test_unscored_pair_skipping_keeps_the_remaining_pairs_aligned(small_copy):
    d = small_copy / "sts" / "sts13" / "senteval"
    (d / "STS.input.FNWN.txt").write_text("a b\tc d\nskip me\tnot scored\ne f\tg h\n", encoding="utf-8")
    (d / "STS.gs.FNWN.txt").write_text("1.5\n\n4.25\n", encoding="utf-8")
    fnwn = load_sts("STS13", small_copy)[0]
    assert fnwn.subset == "FNWN"
    assert fnwn.sentences1 == ("a b", "e f") and fnwn.sentences2 == ("c d", "g h")
    np.testing.assert_array_equal(fnwn.scores, [1.5, 4.25])


@pytest.mark.parametrize("task", ["STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark"])
def test_raw_and_senteval_copies_share_their_gold_scores(data_dir, task):
    for split in (["test"] if task in SUBSETS else ["train", "dev", "test"]):
        raw, senteval = load_sts(task, data_dir, split, "raw"), load_sts(task, data_dir, split, "senteval")
        assert [s.subset for s in raw] == [s.subset for s in senteval]
        for a, b in zip(raw, senteval):
            np.testing.assert_array_equal(a.scores, b.scores)


def test_senteval_copy_is_lowercased_and_raw_keeps_the_release_text(data_dir):
    raw = load_sts("STSBenchmark", data_dir, "test", "raw")[0]
    senteval = load_sts("STSBenchmark", data_dir, "test", "senteval")[0]
    first = (data_dir / "sts/stsb/sts-test.csv").read_text(encoding="utf-8").split("\n")[0].split("\t")
    assert raw.sentences1[0] == first[5].strip() and raw.sentences2[0] == first[6].strip()
    assert all(s == s.lower() for s in senteval.sentences1)
    assert any(s != s.lower() for s in raw.sentences1)


def test_stsb_rows_with_extra_trailing_columns_read_columns_0_to_6(data_dir):
    lines = (data_dir / "sts/stsb/sts-train.csv").read_text(encoding="utf-8").split("\n")[:-1]
    extra = [i for i, ln in enumerate(lines) if len(ln.split("\t")) > 7]
    assert len(extra) == 197  # SOURCES.md: train rows with licence notes appended
    train = load_sts("STSBenchmark", data_dir, "train", "raw")[0]
    for i in extra:
        cols = lines[i].split("\t")
        assert (train.sentences1[i], train.sentences2[i], train.scores[i]) == (
            cols[5].strip(), cols[6].strip(), float(cols[4]))
    assert not any("\t" in s for s in train.sentences1 + train.sentences2)


def test_sick_header_is_skipped_and_crlf_leaves_no_carriage_returns(data_dir):
    test = load_sts("SICKRelatedness", data_dir, "test", "raw")[0]
    assert b"\r\n" in (data_dir / "sts/sick/SICK_test_annotated.txt").read_bytes()
    assert not any("\r" in s for s in test.sentences1 + test.sentences2)
    second_line = (data_dir / "sts/sick/SICK_test_annotated.txt").read_text(encoding="utf-8").splitlines()[1]
    cols = second_line.split("\t")
    assert (test.sentences1[0], test.sentences2[0], test.scores[0]) == (cols[1], cols[2], float(cols[3]))
    assert test.scores.min() >= 1.0 and test.scores.max() <= 5.0


def test_sick_dev_split_is_the_trial_file(data_dir):
    dev = load_sts("SICKRelatedness", data_dir, "dev", "raw")[0]
    assert dev.files[0].endswith("SICK_trial.txt") and dev.split == "dev"
    assert load_sts("sick-r", data_dir, "trial", "raw")[0] is dev


def test_sick_senteval_falls_back_to_raw_and_says_so(data_dir, small_copy):
    assert load_sts("SICKRelatedness", data_dir, "test", "senteval")[0].variant == "raw"
    sick = small_copy / "sts" / "sick"
    (sick / "senteval").mkdir()
    for name in ("SICK_train.txt", "SICK_trial.txt", "SICK_test_annotated.txt"):
        text = (sick / name).read_text(encoding="utf-8")
        (sick / "senteval" / name).write_text(text.replace("A ", "a "), encoding="utf-8")
    s = load_sts("SICKRelatedness", small_copy, "test", "senteval")[0]
    assert s.variant == "senteval" and "senteval" in s.files[0]


def test_task_names_are_case_insensitive_with_aliases():
    assert canonical_task("sts-b") == canonical_task("STSB") == canonical_task("stsbenchmark") == "STSBenchmark"
    assert canonical_task("SICKR") == canonical_task("sick-r") == "SICKRelatedness"
    assert canonical_task("sts12") == canonical_task("STS2012") == "STS12"
    assert parse_tasks("stsb, sts12,STS12") == ["STS12", "STSBenchmark"]
    assert parse_tasks(None) == list(TASKS)


def test_unknown_task_is_an_input_error_naming_it():
    with pytest.raises(InputError, match="unknown STS task 'STS17'"):
        parse_tasks("STS12,STS17")


def test_semeval_tasks_have_no_dev_split(data_dir):
    with pytest.raises(InputError, match="STS12 has only a test split"):
        load_sts("STS12", data_dir, "dev")


def test_missing_data_directory_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_sts("STS12", tmp_path / "nowhere")


def test_missing_file_names_the_file_and_the_fix(small_copy):
    (small_copy / "sts/stsb/senteval/sts-dev.csv").unlink()
    with pytest.raises(MissingDataError, match=r"sts-dev\.csv is missing.*data --download"):
        load_sts("STSBenchmark", small_copy, "dev")


def test_input_and_gold_of_different_lengths_are_rejected(small_copy):
    gold = small_copy / "sts/sts14/senteval/STS.gs.images.txt"
    gold.write_text(gold.read_text(encoding="utf-8") + "3.0\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"STS\.input\.images\.txt has \d+ lines but .*STS\.gs\.images\.txt"):
        load_sts("STS14", small_copy)


def test_non_numeric_gold_score_names_file_and_line(small_copy):
    path = small_copy / "sts/stsb/sts-test.csv"
    lines = path.read_text(encoding="utf-8").split("\n")
    cols = lines[2].split("\t")
    cols[4] = "high"
    lines[2] = "\t".join(cols)
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(InputError, match=r"sts-test\.csv line 3: gold score 'high' is not a number"):
        load_sts("STSBenchmark", small_copy, "test", "raw")


def test_row_with_too_few_columns_names_file_and_line(small_copy):
    path = small_copy / "sts/sts12/raw/STS.input.MSRvid.txt"
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[4] = lines[4].replace("\t", " ")
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(InputError, match=r"STS\.input\.MSRvid\.txt line 5: expected 2 TAB-separated"):
        load_sts("STS12", small_copy, variant="raw")


@pytest.mark.parametrize("rel", ["sts/sts16/senteval/STS.input.plagiarism.txt", "sts/stsb/sts-train.csv",
                                 "sts/sick/SICK_train.txt"])
def test_empty_file_is_an_input_error(small_copy, rel):
    path = small_copy / rel
    path.write_text("" if "SICK" not in rel else path.read_text(encoding="utf-8").splitlines()[0] + "\n")
    task = "STS16" if "sts16" in rel else "STSBenchmark" if "stsb" in rel else "SICKRelatedness"
    split = "test" if task == "STS16" else "train"
    with pytest.raises(InputError, match=f"{path.name}.*(holds no scored|has 0 lines)"):
        load_sts(task, small_copy, split, "raw" if task != "STS16" else "senteval")


def test_non_utf8_file_names_file_and_line(small_copy):
    path = small_copy / "sts/sts15/raw/STS.input.belief.txt"
    data = path.read_bytes().split(b"\n")
    data[1] = b"caf\xe9\tcafe"
    path.write_bytes(b"\n".join(data))
    with pytest.raises(InputError, match=r"STS\.input\.belief\.txt line 2 is not UTF-8"):
        load_sts("STS15", small_copy, variant="raw")


def test_an_edited_file_is_read_again(small_copy):
    before = load_sts("STSBenchmark", small_copy, "dev", "raw")[0]
    path = small_copy / "sts/stsb/sts-dev.csv"
    path.write_text("\n".join(path.read_text(encoding="utf-8").split("\n")[5:]), encoding="utf-8")
    after = load_sts("STSBenchmark", small_copy, "dev", "raw")[0]
    assert len(after) == len(before) - 5
    assert after.sentences1 == before.sentences1[5:]
