"""Hostile but realistic inputs end cleanly (issue 15): each fault is reproduced as a user meets it, and the
command must exit 2 with ONE line ``error: …`` naming the file or argument and the fix, no traceback, and no
changed or half-written file."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, write_fake_run

from simcse_analysis.corpora import read_pair_corpus
from simcse_analysis.errors import InputError


def assert_one_error(code: int, err: str, *needles: str) -> None:
    """Exit code 2, a single stderr line starting ``error:``, no traceback, and each needle in it."""
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


@pytest.fixture()
def eval_args(small_data_dir):
    # --no-progress: stderr holds the error alone (a slow run would show its stages first; tests/test_progress.py)
    return ("--tasks", "stsb", "--data-dir", small_data_dir, "--no-cache", "--no-progress")


# ------------------------------------------------------------------ 1. truncated weights
@pytest.mark.parametrize("weights_file", ["model.safetensors", "pytorch_model.bin"])
def test_truncated_weights_are_one_error_line_in_eval_and_train(run_cli, tiny_bert_copy, eval_args, tmp_path,
                                                                tiny_corpus, small_data_dir, weights_file):
    if weights_file == "pytorch_model.bin":  # the older torch format (zip archive)
        import torch
        from safetensors.torch import load_file

        torch.save(load_file(str(tiny_bert_copy / "model.safetensors")), tiny_bert_copy / weights_file)
        (tiny_bert_copy / "model.safetensors").unlink()
    weights = tiny_bert_copy / weights_file
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])  # a half-copied checkpoint
    before = digest(weights)
    code, _, err = run_cli("eval", tiny_bert_copy, *eval_args)
    assert_one_error(code, err, f"model weights {weights} are unreadable", "truncated",
                     "copy or download the checkpoint again")
    code, _, err = run_cli("train", "unsup", "--model", tiny_bert_copy, "--train-file", tiny_corpus, "--out",
                           tmp_path / "run", "--max-steps", "1", "--batch-size", "8", "--quiet",
                           "--data-dir", small_data_dir)
    assert_one_error(code, err, str(weights), "truncated")
    assert digest(weights) == before and not (tmp_path / "run").exists()


# ------------------------------------------------------------------ 2. tokenizer larger than the vocabulary
def test_tokenizer_larger_than_the_vocabulary_fails_before_any_model_encodes(run_cli, tiny_bert_dir, tiny_bert_copy,
                                                                             eval_args, small_data_dir, tmp_path,
                                                                             capsys):
    from transformers import BertConfig, BertModel

    cfg = BertConfig.from_pretrained(tiny_bert_copy)
    cfg.vocab_size = 10  # the real 30522-token tokenizer stays
    BertModel(cfg).save_pretrained(tiny_bert_copy)
    capsys.readouterr()  # the save's progress bar
    out = tmp_path / "scores.json"
    code, stdout, err = run_cli("eval", tiny_bert_dir, tiny_bert_copy, *eval_args, "--json", out)
    assert_one_error(code, err, str(tiny_bert_copy), "30522 tokens", "has 10", "use the tokenizer")
    assert not out.exists() and stdout == ""  # the good first model was not evaluated either
    page = tmp_path / "report.html"
    code, _, err = run_cli("report", tiny_bert_dir, tiny_bert_copy, "--out", page, "--no-umap",
                           "--data-dir", small_data_dir, "--no-cache")
    assert_one_error(code, err, str(tiny_bert_copy), "30522 tokens")
    assert not page.exists()


# ------------------------------------------------------------------ 3. gold scores outside the scale
@pytest.mark.parametrize(("rel", "value", "scale"), [
    ("sts/stsb/senteval/sts-test.csv", "7.5", "[0, 5]"),
    ("sts/sts12/senteval/STS.gs.MSRpar.txt", "-1", "[0, 5]"),
])
def test_gold_score_outside_its_scale_is_malformed(run_cli, small_data_dir, tmp_path, rel, value, scale):
    data = tmp_path / "data"
    shutil.copytree(small_data_dir, data)
    f = data / rel
    lines = f.read_text(encoding="utf-8").split("\n")
    if rel.endswith(".csv"):
        cols = lines[2].split("\t")
        cols[4] = value
        lines[2] = "\t".join(cols)
    else:
        lines[2] = value
    f.write_text("\n".join(lines), encoding="utf-8")
    task = "stsb" if "stsb" in rel else "sts12"
    code, _, err = run_cli("eval", "unused-model", "--tasks", task, "--data-dir", data)
    assert_one_error(code, err, f"{f} line 3", f"gold score {value} is outside the task's scale {scale}",
                     "restore the file")
    code, out, err = run_cli("data", "--data-dir", data)
    assert code == 2 and "malformed" in out and "ok" in out
    assert_one_error(code, err, "line 3")


# ------------------------------------------------------------------ 4. zero vector in --embeddings
@pytest.mark.parametrize("command", ["align-uniform", "anisotropy", "spectrum"])
def test_zero_vector_names_the_embeddings_file_and_sentence_line(run_cli, small_data_dir, tmp_path, command):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 8)).astype(np.float32)
    x[6] = 0.0  # the embedding of line 7
    npy, txt = tmp_path / "emb.npy", tmp_path / "sentences.txt"
    np.save(npy, x)
    txt.write_text("".join(f"sentence number {i + 1}\n" for i in range(10)), encoding="utf-8")
    out = tmp_path / "out.json"
    code, _, err = run_cli(command, "--embeddings", npy, "--sentences", txt, "--data-dir", small_data_dir,
                           "--json", out)
    assert_one_error(code, err, f"--embeddings {npy} row 6 is the zero vector", f"line 7 of --sentences {txt}",
                     "'sentence number 7'", "re-encode that sentence or remove it")
    assert not out.exists()


# ------------------------------------------------------------------ 5. outputs that are not regular files
def test_json_to_dev_full_is_disk_full_and_the_device_stays(run_cli, tiny_bert_dir, eval_args):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    code, _, err = run_cli("eval", tiny_bert_dir, *eval_args, "--json", "/dev/full")
    assert_one_error(code, err, "cannot write /dev/full: No space left on device", "free space or choose another path")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # written through, never replaced by a regular file


def test_json_dash_is_standard_output_and_the_table_goes_to_stderr(run_cli, tiny_bert_dir, eval_args):
    code, out, err = run_cli("eval", tiny_bert_dir, *eval_args, "--json", "-")
    assert code == 0, err
    doc = json.loads(out)  # stdout holds the JSON document and nothing else
    assert doc["results"][0]["scores"]["STSBenchmark"] is not None
    assert "STSBenchmark" in err and not Path("-").exists()


def test_json_through_a_symlink_to_proc_self_fd_1_writes_stdout_and_keeps_the_link(tiny_bert_dir, small_data_dir,
                                                                                    tmp_path):
    link = tmp_path / "stdout.json"
    link.symlink_to("/proc/self/fd/1")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "simcse_analysis", "eval", str(tiny_bert_dir), "--tasks", "stsb",
                        "--data-dir", str(small_data_dir), "--no-cache", "--json", str(link)],
                       capture_output=True, text=True, env=env, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert '"STSBenchmark"' in r.stdout and "wrote" in r.stdout
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"


def test_json_to_a_fifo_is_written_through_or_refused_without_a_reader(run_cli, tiny_bert_dir, eval_args, tmp_path):
    fifo = tmp_path / "scores.fifo"
    os.mkfifo(fifo)
    code, _, err = run_cli("eval", tiny_bert_dir, *eval_args, "--json", fifo)  # nobody reads: refused, no hang
    assert_one_error(code, err, str(fifo), "no reader", "start the reader first")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader is there (the JSON fits the pipe buffer)
    try:
        code, _, err = run_cli("eval", tiny_bert_dir, *eval_args, "--json", fifo)
        assert code == 0, err
        doc = json.loads(os.read(reader, 1 << 16).decode())
    finally:
        os.close(reader)
    assert doc["results"][0]["model"] == str(tiny_bert_dir)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_symlink_to_a_regular_file_is_kept_and_its_target_replaced(tmp_path):
    from simcse_analysis.io_utils import write_output_text

    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_output_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    write_output_text("/dev/null", "discarded")  # a device is written through
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


# ------------------------------------------------------------------ 6. disk full while writing --json / --out
class _DiskFullFile:
    """A binary file whose writes stop half-way with ENOSPC, as on a full filesystem."""

    def __init__(self, f):
        self.f = f

    def write(self, data: bytes) -> int:
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


@pytest.fixture()
def disk_full(monkeypatch):
    """Every atomic write of an output file hits a full disk after writing half of its bytes."""
    import builtins

    from simcse_analysis import io_utils

    def full_open(file, mode="r", *args, **kwargs):
        f = builtins.open(file, mode, *args, **kwargs)  # noqa: SIM115 - closed by _DiskFullFile
        return _DiskFullFile(f) if "w" in mode else f

    monkeypatch.setattr(io_utils, "open", full_open, raising=False)


def test_disk_full_while_writing_json_keeps_the_old_file_and_leaves_no_partial(run_cli, tiny_bert_dir, eval_args,
                                                                             tmp_path, disk_full):
    out = tmp_path / "scores.json"
    out.write_text('{"old": true}\n')
    code, _, err = run_cli("eval", tiny_bert_dir, *eval_args, "--json", out)
    assert_one_error(code, err, f"cannot write {out}: No space left on device; free space or choose another path")
    assert out.read_text() == '{"old": true}\n' and listing(tmp_path) == ["scores.json"]


def test_disk_full_while_exporting_sentences_leaves_no_file(run_cli, small_data_dir, tmp_path, disk_full):
    txt = tmp_path / "sentences.txt"
    code, _, err = run_cli("spectrum", "--export-sentences", txt, "--data-dir", small_data_dir)
    assert_one_error(code, err, f"cannot write {txt}: No space left on device")
    assert listing(tmp_path) == []


# ------------------------------------------------------------------ 7. unwritable output directory
@pytest.fixture()
def locked(monkeypatch, tmp_path):
    """A directory in which every mkdir fails with EACCES (tests run as root, so chmod would not do)."""
    root = tmp_path / "locked"
    root.mkdir()
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if Path(os.fspath(path)).resolve().is_relative_to(root.resolve()):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    return root


def test_train_into_an_unwritable_directory_is_one_error_line(run_cli, locked, tiny_trainer_bert, tiny_corpus,
                                                             small_data_dir):
    out = locked / "run"
    code, _, err = run_cli("train", "unsup", "--model", tiny_trainer_bert, "--train-file", tiny_corpus, "--out", out,
                           "--max-steps", "1", "--batch-size", "8", "--quiet", "--data-dir", small_data_dir)
    assert_one_error(code, err, f"cannot write --out {out}: Permission denied", "choose a writable output directory")
    assert listing(locked) == []


def test_whiten_into_an_unwritable_directory_is_one_error_line(run_cli, locked, tiny_bert_dir, tiny_corpus):
    out = locked / "whitened"
    code, _, err = run_cli("whiten", tiny_bert_dir, "--corpus", tiny_corpus, "--out", out, "--no-cache")
    assert_one_error(code, err, f"cannot write --out {out}: Permission denied", "choose a writable output directory")
    assert listing(locked) == []


def test_train_sbert_into_an_unwritable_directory_is_one_error_line(run_cli, locked, tiny_trainer_bert, data_dir):
    out = locked / "sbert"
    code, _, err = run_cli("train", "sbert", "--model", tiny_trainer_bert, "--train-file",
                           data_dir / "nli" / "snli-senteval", "--out", out, "--max-steps", "1", "--quiet")
    assert_one_error(code, err, f"cannot write --out {out}: Permission denied", "choose a writable output directory")
    assert listing(locked) == []


# ------------------------------------------------------------------ 8. supervised CSV headers
def test_header_naming_the_hard_negative_second_is_refused(run_cli, tmp_path, tiny_trainer_bert, small_data_dir):
    bad = tmp_path / "swapped.csv"
    bad.write_text("sent0,hard_neg\n" + "".join(f"anchor {i},negative {i}\n" for i in range(16)))
    out = tmp_path / "run"
    code, _, err = run_cli("train", "sup", "--model", tiny_trainer_bert, "--train-file", bad, "--out", out,
                           "--max-steps", "1", "--batch-size", "8", "--quiet", "--data-dir", small_data_dir)
    assert_one_error(code, err, f"pair corpus {bad} line 1", "header sent0,hard_neg has no sent1 column",
                     "name them sent0,sent1")
    assert not out.exists()


def test_known_header_names_are_read_by_name_and_contradictions_refused(tmp_path):
    f = tmp_path / "nli.csv"
    f.write_text("hard_neg,sent1,sent0\nc,b,a\nf,e,d\n")
    corpus = read_pair_corpus(f)
    assert (corpus.sent0, corpus.sent1, corpus.hard_neg) == (["a", "d"], ["b", "e"], ["c", "f"])
    assert corpus.columns == ("sent0", "sent1", "hard_neg")
    f.write_text("premise,hypothesis\na,b\n")  # unknown names: by position, as the reference
    assert read_pair_corpus(f).sent1 == ["b"]
    for header, match in (("sent0,sent0", "repeats"), ("premise,sent0", "names column 2 'sent0'"),
                          ("sent1,hard_neg,x", "names column 1 'sent1'")):
        f.write_text(f"{header}\n" + ",".join("abc"[: header.count(",") + 1]) + "\n")
        with pytest.raises(InputError, match=match):
            read_pair_corpus(f)


# ------------------------------------------------------------------ 9. a training run directory as MODEL
def test_every_checkpoint_command_accepts_a_run_directory_as_report_does(run_cli, tiny_bert_dir, small_data_dir,
                                                                         tiny_corpus, tmp_path):
    run = write_fake_run(tmp_path / "run", tiny_bert_dir)
    common = ("--data-dir", small_data_dir, "--no-cache")
    for command, extra in (("eval", ("--tasks", "stsb")), ("align-uniform", ()), ("spectrum", ()),
                           ("anisotropy", ("--no-layers",))):
        results = []
        for model in (run, run / "best"):
            out = tmp_path / f"{command}-{model.name}.json"
            code, _, err = run_cli(command, model, *extra, *common, "--json", out)
            assert code == 0, (command, err)
            results.append(json.loads(out.read_text())["results"][0])
        for r in results:  # only the name given may differ (the resolved path is the same)
            r.pop("model")
            r.get("encoder", {}).pop("model", None)
        assert results[0] == results[1], command
    code, _, err = run_cli("whiten", run, "--corpus", tiny_corpus, "--out", tmp_path / "w", "--no-cache")
    assert code == 0, err
    meta = json.loads((tmp_path / "w" / "simcse_analysis.json").read_text())
    assert Path(meta["whitening"]["base_path"]) == (run / "best").resolve()


def test_a_run_without_checkpoints_says_so(run_cli, tmp_path, small_data_dir):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    code, _, err = run_cli("eval", run, "--tasks", "stsb", "--data-dir", small_data_dir)
    assert_one_error(code, err, f"{run} is a training run without a best/ or last/ checkpoint", "--resume")


# ------------------------------------------------------------------ quiet until now
def test_unwritable_cache_dir_warns_once(run_cli, tiny_bert_dir, small_data_dir, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cache = blocker / "cache"  # cannot be created, even by root
    code, _, err = run_cli("eval", tiny_bert_dir, "--tasks", "stsb,sick-r", "--data-dir", small_data_dir,
                           "--cache-dir", cache)
    assert code == 0, err
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and str(cache) in warnings[0] and "--no-cache" in warnings[0]


def test_corrupt_cache_entry_is_re_encoded_with_a_warning(run_cli, tiny_bert_dir, small_data_dir, tmp_path):
    cache = tmp_path / "cache"
    args = ("eval", tiny_bert_dir, "--tasks", "stsb", "--data-dir", small_data_dir, "--cache-dir", cache)
    code, first, err = run_cli(*args)
    assert code == 0 and "warning" not in err
    entry = next(cache.rglob("*.npy"))
    raw = bytearray(entry.read_bytes())
    raw[-1] ^= 0xFF  # bit rot in the last vector
    entry.write_bytes(bytes(raw))
    code, second, err = run_cli(*args)
    assert code == 0
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and str(entry) in warnings[0] and "re-encoding" in warnings[0]
    assert second == first  # the same scores, from a fresh encoding


def test_option_range_error_is_one_error_line(run_cli):
    code, out, err = run_cli("eval", "some-model", "--batch-size", "0")
    assert_one_error(code, err, "--batch-size", "greater than or equal to 1", "simcse-analyze eval --help")
    assert out == ""


def test_keyboard_interrupt_prints_aborted_and_exits_130(run_cli, monkeypatch, small_data_dir):
    from simcse_analysis import sts_data

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sts_data, "load_sts", interrupted)
    code, _, err = run_cli("eval", "m", "--tasks", "stsb", "--data-dir", small_data_dir)
    assert code == 130 and err.strip() == "aborted"


def test_sigint_prints_aborted_and_exits_130(small_data_dir, tmp_path):
    """A real SIGINT while the command waits on its input (a FIFO given as --sentences)."""
    fifo = tmp_path / "sentences.fifo"
    os.mkfifo(fifo)
    np.save(tmp_path / "e.npy", np.eye(3, dtype=np.float32))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    # Python's own Ctrl-C handler even if this test runs where SIGINT is ignored (a background job)
    launcher = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                "from simcse_analysis.cli import main; main(sys.argv[1:])")
    p = subprocess.Popen([sys.executable, "-c", launcher, "spectrum", "--embeddings", str(tmp_path / "e.npy"),
                          "--sentences", str(fifo), "--data-dir", str(small_data_dir)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    writer = None
    try:
        deadline = time.monotonic() + 120
        while writer is None and time.monotonic() < deadline and p.poll() is None:
            try:  # succeeds once the command has opened the FIFO for reading
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.05)
        assert writer is not None, p.communicate(timeout=10)
        time.sleep(0.5)  # the command now blocks reading, waiting for sentences
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if writer is not None:
            os.close(writer)
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert err.strip().splitlines()[-1] == "aborted" and "Traceback" not in err
