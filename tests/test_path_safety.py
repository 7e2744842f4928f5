"""No output ever lands on an input (issue 22): every command that writes checks each output path against each
input path — equal, parent, child, through a training run given as MODEL (it resolves to best/ or last/), through a
symlink on either side, a hard link — and refuses with ONE line ``error: …``, exit 2, before any model loads, with
every input byte-for-byte untouched. ``whiten RUN --out RUN --overwrite`` used to delete the run with exit 0."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import write_fake_run
from test_hardening import assert_one_error

from simcse_analysis.errors import InputError
from simcse_analysis.path_safety import RUN_ENTRIES, check_apart, input_places


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root``: a file's SHA-256, a symlink's target, a directory's mark."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


@pytest.fixture()
def world(tmp_path, tiny_bert_dir, tiny_corpus, small_data_dir) -> SimpleNamespace:
    """A checkpoint, a finished training run (best/, run.json, trajectory.jsonl), a corpus, symlinks to the run and
    to the checkpoint, an embedding matrix with its sentences, saved JSON documents and an existing store."""
    w = SimpleNamespace(root=tmp_path)
    w.model = tmp_path / "tiny"
    shutil.copytree(tiny_bert_dir, w.model)
    w.run = write_fake_run(tmp_path / "runs" / "u1", tiny_bert_dir)
    (w.run / "run.json").write_text(json.dumps({"config": {}, "status": "finished"}))
    w.corpus = tmp_path / "c.txt"
    shutil.copy(tiny_corpus, w.corpus)
    (tmp_path / "link-run").symlink_to(w.run)
    (tmp_path / "link-model").symlink_to(w.model)
    w.link_run, w.link_model = tmp_path / "link-run", tmp_path / "link-model"
    w.hard = tmp_path / "c-hardlink.txt"
    os.link(w.corpus, w.hard)
    w.npy, w.sentences = tmp_path / "x.npy", tmp_path / "s.txt"
    w.sentences.write_text("".join(f"sentence number {i}\n" for i in range(8)))
    np.save(w.npy, np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32))
    w.record = tmp_path / "record.json"
    w.record.write_text("{}")
    w.scores = tmp_path / "scores"
    w.scores.mkdir()
    for i in (0, 1):
        (w.scores / f"{i}.json").write_text("{}")
    w.store = tmp_path / "store"
    w.store.mkdir()
    (w.store / "manifest.json").write_text("{}")
    w.data = tmp_path / "data"
    shutil.copytree(small_data_dir / "sts", w.data / "sts")
    (w.data / "unsup").mkdir(parents=True)
    (w.data / "unsup" / "wiki1m_for_simcse.txt").write_text('{"resources": {}}')  # a manifest at a fetched path
    return w


@pytest.fixture()
def no_model_loads(monkeypatch):
    """Any model load fails the test: the refusal must come first."""
    import transformers

    import simcse_analysis.encoder
    import trainers.loop

    def fail(*args, **kwargs):
        raise AssertionError("a model was loaded before the output path was checked")

    monkeypatch.setattr(simcse_analysis.encoder, "load_encoder", fail)
    monkeypatch.setattr(trainers.loop, "build_model", fail)
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", fail)


TRAIN = ("--max-steps", "1", "--batch-size", "8", "--quiet")
#: Commands that read the STS data (and take --data-dir).
DATA_COMMANDS = {"eval", "align-uniform", "spectrum", "anisotropy", "report", "compare", "tokens", "flow", "train",
                 "ablate"}

#: (case id, argv built from the world, words the one error line must hold). Every case names the output option
#: and the input it would have destroyed or changed.
CASES = [
    # the reproduction and its variants: post-processing with a training run as MODEL
    ("whiten-run-onto-itself", lambda w: ["whiten", w.run, "--corpus", w.corpus, "--out", w.run, "--overwrite"],
     ["--out", "contains MODEL", "best/ of the training run"]),
    ("abtt-onto-the-runs-parent", lambda w: ["abtt", w.run, "--corpus", w.corpus, "--out", w.run.parent,
                                              "--overwrite"], ["--out", "contains MODEL"]),
    ("standardize-best-onto-last", lambda w: ["standardize", w.run / "best", "--corpus", w.corpus, "--out",
                                              w.run / "last", "--overwrite"],
     ["is MODEL", "last/ of the training run"]),
    ("flow-through-a-symlinked-run", lambda w: ["flow", w.link_run, "--corpus", w.corpus, "--out", w.run,
                                                "--overwrite"], ["contains MODEL", "link-run"]),
    ("whiten-out-a-symlink-to-the-model", lambda w: ["whiten", w.model, "--corpus", w.corpus, "--out", w.link_model,
                                                     "--overwrite"], ["is MODEL", "(= "]),
    ("whiten-into-the-model", lambda w: ["whiten", w.model, "--corpus", w.corpus, "--out", w.model / "whitened"],
     ["lies inside MODEL"]),
    ("whiten-out-contains-the-corpus", lambda w: ["whiten", w.model, "--corpus", w.corpus, "--out", w.root,
                                                  "--overwrite"], ["contains"]),
    ("whiten-json-onto-the-corpus", lambda w: ["whiten", w.model, "--corpus", w.corpus, "--out", w.root / "w",
                                               "--json", w.corpus], ["--json", "is --corpus"]),
    ("whiten-json-onto-a-hard-link-of-the-corpus", lambda w: ["whiten", w.model, "--corpus", w.corpus, "--out",
                                                              w.root / "w", "--json", w.hard], ["is --corpus"]),
    ("whiten-json-into-the-model", lambda w: ["whiten", w.model, "--corpus", w.corpus, "--out", w.root / "w",
                                              "--json", w.model / "config.json"], ["--json", "lies inside MODEL"]),
    ("whiten-json-into-its-own-out", lambda w: ["whiten", w.model, "--corpus", w.corpus, "--out", w.root / "w",
                                                "--json", w.root / "w" / "config.json"], ["two outputs"]),
    # training
    ("train-from-a-run-into-it", lambda w: ["train", "unsup", "--model", w.run, "--train-file", w.corpus, "--out",
                                            w.run, "--overwrite", *TRAIN], ["--out", "contains --model"]),
    ("train-resume-from-its-own-best", lambda w: ["train", "unsup", "--model", w.run / "best", "--train-file",
                                                  w.corpus, "--out", w.run, "--resume", *TRAIN], ["contains --model"]),
    ("train-json-into-its-own-run", lambda w: ["train", "unsup", "--model", w.model, "--train-file", w.corpus,
                                               "--out", w.run, "--resume", "--json", w.run / "trajectory.jsonl",
                                               *TRAIN], ["--json", "lies inside --out", "two outputs"]),
    ("train-json-onto-the-train-file", lambda w: ["train", "unsup", "--model", w.model, "--train-file", w.corpus,
                                                  "--out", w.root / "r", "--json", w.corpus, *TRAIN],
     ["--json", "is --train-file"]),
    ("train-sbert-onto-the-run", lambda w: ["train", "sbert", "--model", w.run, "--train-file", w.corpus, "--out",
                                            w.link_run, "--overwrite", "--max-steps", "1", "--quiet"],
     ["--out", "--model"]),
    ("ablate-around-its-model", lambda w: ["ablate", "dropout", "--model", w.run / "best", "--train-file", w.corpus,
                                           "--out", w.run.parent, "--rates", "0.1", *TRAIN],
     ["--out", "contains --model"]),
    # the embedding store
    ("encode-into-the-model", lambda w: ["encode", w.model, "--sentences", w.sentences, "--out", w.model / "store"],
     ["--out", "lies inside MODEL"]),
    ("encode-around-its-sentences", lambda w: ["encode", w.model, "--sentences", w.sentences, "--out", w.root],
     ["--out", "contains"]),
    # analyses, reports, comparisons
    ("report-onto-its-record", lambda w: ["report", "--from-json", w.record, "--json", w.record],
     ["--json", "is --from-json"]),
    ("report-onto-the-run-trajectory", lambda w: ["report", w.run, "--out", w.run / "trajectory.jsonl"],
     ["--out", "is MODEL", "trajectory.jsonl of the training run"]),
    ("report-onto-the-comparison-it-reads", lambda w: ["report", "--from-json", w.record, "--compare-from",
                                                       w.scores / "0.json", "--out", w.scores / "0.json"],
     ["is --compare-from"]),
    ("compare-save-scores-over-its-inputs", lambda w: ["compare", w.scores / "0.json", w.scores / "1.json",
                                                       "--save-scores", w.scores], ["--save-scores", "contains MODEL"]),
    ("compare-json-into-a-checkpoint", lambda w: ["compare", w.model, w.run, "--json", w.model / "model.safetensors"],
     ["--json", "lies inside MODEL"]),
    ("align-uniform-json-onto-its-sentences", lambda w: ["align-uniform", "--embeddings", w.npy, "--sentences",
                                                         w.sentences, "--json", w.sentences], ["is --sentences"]),
    ("spectrum-out-onto-its-embeddings", lambda w: ["spectrum", "--embeddings", w.npy, "--sentences", w.sentences,
                                                    "--out", w.npy], ["--out", "is --embeddings"]),
    ("anisotropy-export-into-a-store", lambda w: ["anisotropy", "--embeddings", w.store, "--export-sentences",
                                                  w.store / "manifest.json"], ["--export-sentences", "--embeddings"]),
    ("tokens-json-onto-its-corpus", lambda w: ["tokens", w.model, "--corpus", w.corpus, "--json", w.corpus],
     ["is --corpus"]),
    ("eval-json-onto-the-weights", lambda w: ["eval", w.link_model, "--json", w.model / "model.safetensors"],
     ["--json", "lies inside MODEL", "link-model"]),
    ("eval-json-into-the-sts-data", lambda w: ["eval", w.model, "--data-dir", w.data, "--json",
                                               w.data / "sts" / "x.json"], ["lies inside the STS data"]),
    ("uniformity-json-onto-the-manifest", lambda w: ["uniformity", w.store, "--json", w.store / "manifest.json"],
     ["--json", "lies inside PATH"]),
    ("data-download-over-its-manifest", lambda w: ["data", "--download", "--only", "wiki1m", "--force", "--data-dir",
                                                   w.data, "--manifest", w.data / "unsup" / "wiki1m_for_simcse.txt"],
     ["--download wiki1m", "is --manifest"]),
]


@pytest.mark.parametrize("argv, needles", [pytest.param(a, n, id=i) for i, a, n in CASES])
def test_an_output_on_an_input_is_refused_before_any_model_loads(run_cli, world, no_model_loads, small_data_dir,
                                                                 argv, needles):
    before = snapshot(world.root)
    args = argv(world)
    if "--data-dir" not in args and args[0] in DATA_COMMANDS:
        args += ["--data-dir", small_data_dir]
    code, _, err = run_cli(*args)
    assert_one_error(code, err, *needles)
    assert snapshot(world.root) == before


# ------------------------------------------------------------------ the rule itself (no command around it)
def test_outputs_beside_a_run_or_under_a_similar_name_are_allowed(world):
    """Rule B: a run directory counts as the entries its trainer writes, so a report beside them is fine; a
    sibling whose name merely starts like the input's (u1 vs u10) is not inside it; a hub id has no local place;
    standard output and devices are written through, never replaced."""
    ok = [("--out", world.run / "report.html"), ("--json", world.run.parent / "u10" / "x.json"),
          ("--json", "-"), ("--json", "/dev/null"), ("--out", world.root / "elsewhere")]
    check_apart(ok, [("MODEL", world.run), ("MODEL", "princeton-nlp/unsup-simcse-bert-base-uncased"),
                     ("--corpus", world.corpus)])


def test_every_entry_the_trainer_writes_is_part_of_the_run():
    import trainers.loop
    import trainers.rundir

    for name in (trainers.rundir.RUN_FILE, trainers.rundir.TRAJECTORY_FILE, trainers.rundir.STATE_DIR,
                 trainers.loop.TENSORBOARD_DIR, "best", "last"):
        assert name in RUN_ENTRIES


def test_model_at_pooler_and_an_offline_alias_stand_for_their_directories(world, minilm_path):
    assert {p.real for p in input_places("MODEL", f"{world.model}@avg")} == {str(world.model.resolve())}
    assert {p.real for p in input_places("MODEL", "all-MiniLM-L6-v2")} == {os.path.realpath(minilm_path)}
    with pytest.raises(InputError, match="lies inside MODEL all-MiniLM-L6-v2"):
        check_apart([("--out", minilm_path / "whitened")], [("MODEL", "all-MiniLM-L6-v2")])


def test_a_checkpoint_of_a_run_stands_for_the_whole_run_through_symlinks(world, tmp_path):
    """best/ may itself be a symlink to a directory elsewhere: that directory is protected too."""
    elsewhere = tmp_path / "elsewhere-best"
    shutil.move(world.run / "best", elsewhere)
    (world.run / "best").symlink_to(elsewhere)
    with pytest.raises(InputError, match=r"is MODEL .*best/ of the training run"):
        check_apart([("--out", elsewhere)], [("MODEL", world.run)])
    with pytest.raises(InputError, match="last/ of the training run"):
        check_apart([("--out", world.run / "last" / "x")], [("MODEL", world.link_run / "best")])


# ------------------------------------------------------------------ --overwrite replaces only what it should
def test_overwrite_replaces_a_checkpoint_but_never_an_arbitrary_directory(run_cli, world, no_model_loads):
    notes = world.root / "notes"
    notes.mkdir()
    (notes / "thesis.tex").write_text("months of work")
    code, _, err = run_cli("whiten", world.model, "--corpus", world.corpus, "--out", notes, "--overwrite")
    assert_one_error(code, err, f"--out {notes} holds files that are not a checkpoint", "--overwrite would delete")
    assert (notes / "thesis.tex").read_text() == "months of work"


def test_overwrite_through_a_symlinked_out_keeps_the_link_and_leaves_no_old_directory(run_cli, world):
    """``--out LINK --overwrite`` used to replace the link by a directory and leave ``.LINK.old`` behind, on which
    the next ``--overwrite`` failed. Now the link's target is replaced, twice in a row, and nothing is left over."""
    target = world.root / "whitened-real"
    link = world.root / "whitened"
    link.symlink_to(target)
    for _ in range(2):
        code, _, err = run_cli("whiten", world.model, "--corpus", world.corpus, "--out", link, "--overwrite",
                               "--no-cache", "--max-sentences", "64")
        assert code == 0, err
        assert link.is_symlink() and os.readlink(link) == str(target)
        assert json.loads((target / "simcse_analysis.json").read_text())["baseline"] == "whitening"
    assert not [p.name for p in world.root.iterdir() if p.name.endswith(".old") or ".tmp-" in p.name]


# ------------------------------------------------------------------ the store writer: nothing half-written
def test_encode_of_a_non_utf8_file_names_the_line_and_leaves_nothing(run_cli, world):
    bad = world.root / "latin1.txt"
    bad.write_bytes("first line\nsecond line\ncaf\u00e9 au lait\n".encode("latin-1"))
    out = world.root / "new" / "store"
    code, _, err = run_cli("encode", world.model, "--sentences", bad, "--out", out, "--no-cache")
    assert_one_error(code, err, f"--sentences {bad}: line 3 is not UTF-8 text", "byte 0xe9 at column 4",
                     "convert the file to UTF-8")
    assert not out.exists()


def test_encode_into_a_directory_of_other_files_is_refused(run_cli, world, no_model_loads):
    code, _, err = run_cli("encode", world.model, "--sentences", world.sentences, "--out", world.scores)
    assert_one_error(code, err, f"--out {world.scores} holds files that are not an embedding store")
    assert sorted(p.name for p in world.scores.iterdir()) == ["0.json", "1.json"]


def test_disk_full_while_encoding_is_one_line_and_the_finished_shards_resume(run_cli, world, monkeypatch):
    """ENOSPC on the third shard: one error line naming the store and the cause; the two complete shards stay,
    and rerunning the same command (space freed) encodes only the rest, giving the store a fresh run gives."""
    import errno

    from simcse_analysis import store

    real_write = store._write_shard
    written: list[int] = []

    def write_shard(root, k, arr):
        if k == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(root / store.shard_name(k)))
        written.append(k)
        real_write(root, k, arr)

    monkeypatch.setattr(store, "_write_shard", write_shard)
    out, text = world.root / "store-full", world.root / "twelve.txt"
    text.write_text("".join(f"sentence {i} of twelve\n" for i in range(12)))
    args = ("encode", world.model, "--sentences", text, "--out", out, "--shard-rows", "3", "--no-cache")
    code, _, err = run_cli(*args)
    err = "\n".join(ln for ln in err.splitlines() if not ln.startswith("encoding into"))  # the progress bar
    assert_one_error(code, err, f"cannot write --out {out} (shard-000002.npy): No space left on device",
                     "free space, then rerun the same command", "2 complete shard(s) are kept")
    monkeypatch.setattr(store, "_write_shard", real_write)
    code, out_text, err = run_cli(*args)
    assert code == 0, err
    assert "4 shards (2 encoded now, 2 already complete)" in out_text
    fresh = world.root / "store-fresh"
    assert run_cli(*args[:5], fresh, *args[6:])[0] == 0
    np.testing.assert_array_equal(np.asarray(store.open_store(out)), np.asarray(store.open_store(fresh)))
