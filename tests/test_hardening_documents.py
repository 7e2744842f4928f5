"""Every document read back from disk goes through one validated reader (issue 22): a hostile scores file,
comparison, report record, store manifest, checkpoint metadata, run record, trajectory, token or analysis
JSON ends with ONE line ``error: …`` naming the file and the field (``models[2].sts_test.scores.STS12``),
exit code 2, before any model is loaded or any table printed."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from test_hardening import assert_one_error

from simcse_analysis.errors import InputError
from simcse_analysis.records import SchemaError, SchemaVersionError

DEEP = "[" * 100_000 + "]" * 100_000  # deeper than any parser's recursion limit
MAX_DEPTH = 64  # simcse_analysis.documents.MAX_DEPTH (checked below)


def _no_model(monkeypatch) -> None:
    """Fail the test if a checkpoint is loaded: a bad document must be refused before any encoding."""
    from simcse_analysis import encoder

    monkeypatch.setattr(encoder, "load_encoder", lambda *a, **k: pytest.fail("a model was loaded"))


def _write(path: Path, doc) -> Path:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def _edit(doc: dict, dotted: str, value) -> dict:
    """A deep copy of ``doc`` with the field at ``dotted`` (``a.b.2.c``) set to ``value`` (``...``: removed)."""
    out = copy.deepcopy(doc)
    *head, last = [int(p) if p.isdigit() else p for p in dotted.split(".")]
    node = out
    for p in head:
        node = node[p]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return out


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_bert_dir, small_data_dir):
    """A real comparison (``compare --json``) and its scores files (``--save-scores``), STS-B only (fast)."""
    from simcse_analysis.comparison import CompareSettings, compare

    out = tmp_path_factory.mktemp("saved_scores")
    report = compare([f"{tiny_bert_dir}@avg", f"{tiny_bert_dir}@cls_before_pooler"],
                     CompareSettings(tasks=("STSBenchmark",), resamples=100, embedding_space=False),
                     data_dir=small_data_dir, encoder_kwargs={"use_cache": False}, save_scores=out / "scores")
    (out / "c.json").write_text(report.to_json(), encoding="utf-8")
    return out


# ------------------------------------------------------------------ the reader itself
def test_field_paths_read_like_json_pointers():
    from simcse_analysis.documents import field_path

    assert field_path(("models", 2, "sts_test", "scores", "STS12")) == "models[2].sts_test.scores.STS12"
    assert field_path(("tasks", "a b", 0)) == 'tasks["a b"][0]'
    assert field_path(()) == "(document)"


@pytest.mark.parametrize("text", [DEEP, "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
                                  '{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1)])
def test_nesting_beyond_the_bound_is_one_schema_error_not_a_recursion_error(text):
    from simcse_analysis import documents
    from simcse_analysis.documents import parse_json

    assert documents.MAX_DEPTH == MAX_DEPTH
    with pytest.raises(SchemaError, match=f"more than {MAX_DEPTH} deep"):
        parse_json(text, "f.json", "fix it")
    assert parse_json("[" * MAX_DEPTH + "]" * MAX_DEPTH, "f.json", "fix it") is not None


# ------------------------------------------------------------------ compare: scores files
SCORES_CASES = [
    ("version", 99, "version 99, written by a newer simcse-analysis", "upgrade simcse-analysis"),
    ("version", "1", "version '1', which no simcse-analysis release wrote", "--save-scores"),
    ("tasks", ..., "tasks is missing", "--save-scores"),
    ("tasks.STSBenchmark.predictions.3", "0.5", ("tasks.STSBenchmark.predictions[3] must be a finite number or null, "
                                                "not '0.5'"), "--save-scores"),
    ("tasks.STSBenchmark.bounds", [0, 7], "tasks.STSBenchmark.bounds must rise from 0 to the number of predictions",
     "--save-scores"),
    ("tasks.STSBenchmark.subsets", "test", "tasks.STSBenchmark.subsets must be a list", "--save-scores"),
    ("label", ["a"], "label must be a string", "--save-scores"),
]


@pytest.mark.parametrize(("field", "value", "problem", "fix"), SCORES_CASES)
def test_hostile_scores_file_is_one_error_naming_the_field_before_any_encoding(
        saved, run_cli, tmp_path, small_data_dir, monkeypatch, field, value, problem, fix):
    good = json.loads((saved / "scores" / "0.json").read_text())
    bad = _write(tmp_path / "0.json", _edit(good, field, value))
    _no_model(monkeypatch)
    code, out, err = run_cli("compare", bad, saved / "scores" / "1.json", "--tasks", "stsb", "--no-embedding-space",
                             "--data-dir", small_data_dir, "--resamples", "100")
    assert_one_error(code, err, str(bad), problem, fix)
    assert out == ""  # nothing printed before the error


@pytest.mark.parametrize("content", [DEEP, "{\"schema\": \"simcse-analysis/model-scores\", \"version\": 1, " + "\xff",
                                     "[1, 2]"])
def test_deep_undecodable_or_foreign_scores_file_is_one_error(saved, run_cli, tmp_path, small_data_dir, content):
    bad = tmp_path / "0.json"
    bad.write_bytes(content.encode("latin-1") if "\xff" in content else content.encode())
    code, out, err = run_cli("compare", bad, saved / "scores" / "1.json", "--tasks", "stsb", "--no-embedding-space",
                             "--data-dir", small_data_dir, "--resamples", "100")
    assert_one_error(code, err, str(bad))
    assert out == ""


def test_valid_scores_files_still_compare(saved, run_cli, small_data_dir, monkeypatch):
    _no_model(monkeypatch)
    code, out, err = run_cli("compare", saved / "scores" / "0.json", saved / "scores" / "1.json", "--tasks", "stsb",
                             "--no-embedding-space", "--data-dir", small_data_dir, "--resamples", "100")
    assert code == 0, err
    assert "STSBenchmark" in out


# ------------------------------------------------------------------ report --compare-from
@pytest.mark.parametrize(("field", "value", "problem"), [
    ("version", 99, "version 99, written by a newer simcse-analysis"),
    ("rows.0.p_value", "0.01", "rows[0].p_value must be a finite number or null, not '0.01'"),
    ("rows.0.metric", ..., "rows[0].metric is missing"),
    ("pairs.0.cka", [["x"]], "pairs[0].cka[0][0] must be a finite number or null"),
    ("settings.alpha", 5, "settings.alpha must be a finite number >= 0 <= 1"),
])
def test_hostile_compare_from_document_fails_before_the_report_encodes_or_prints(
        saved, run_cli, tmp_path, tiny_bert_dir, small_data_dir, monkeypatch, field, value, problem):
    doc = json.loads((saved / "c.json").read_text())
    bad = _write(tmp_path / "c.json", _edit(doc, field, value))
    page = tmp_path / "page.html"
    _no_model(monkeypatch)
    code, out, err = run_cli("report", tiny_bert_dir, "--compare-from", bad, "--out", page, "--no-umap",
                             "--data-dir", small_data_dir)
    assert_one_error(code, err, str(bad), problem)
    assert out == "" and not page.exists()


# ------------------------------------------------------------------ report --from-json
@pytest.mark.parametrize(("field", "value", "problem"), [
    ("models.1.sts_test.scores.STS12", "72.1", "models[1].sts_test.scores.STS12 must be a finite number or null"),
    ("models.0.spectrum", ..., "models[0].spectrum is missing"),
    ("models.0.anisotropy.summary.isoscore", [1], "models[0].anisotropy.summary.isoscore must be a finite number"),
    ("models.0.random_pairs.counts.0", -3, "models[0].random_pairs.counts[0] must be an integer >= 0"),
    ("trajectories.0.points.0.step", "one", "trajectories[0].points[0].step must be an integer >= 0"),
    ("trajectories.0.model", 7, "trajectories[0].model is 7, but there are 3 models"),
    ("models", [], "models must be a list of at least 1"),
])
def test_hostile_from_json_record_names_the_field_and_prints_nothing(report_record, run_cli, tmp_path, field,
                                                                     value, problem):
    bad = _write(tmp_path / "rec.json", _edit(report_record, field, value))
    page = tmp_path / "page.html"
    code, out, err = run_cli("report", "--from-json", bad, "--out", page)
    assert_one_error(code, err, f"--from-json {bad}", problem, "simcse-analyze report")
    assert out == "" and not page.exists()


def test_from_json_nested_100k_deep_is_one_error(run_cli, tmp_path):
    bad = _write(tmp_path / "rec.json", '{"schema": "simcse-analysis/report", "version": 2, "models": ' + DEEP + "}")
    code, _out, err = run_cli("report", "--from-json", bad, "--out", tmp_path / "p.html")
    assert_one_error(code, err, str(bad), f"more than {MAX_DEPTH} deep")


def test_a_record_keeps_its_embedded_comparison_valid(report_record, saved, tmp_path):
    from reports.collect import load_record

    doc = json.loads((saved / "c.json").read_text())
    rec = {**report_record, "comparison": _edit(doc, "rows.0.delta", "big")}
    with pytest.raises(SchemaError, match=r"comparison\.rows\[0\]\.delta must be a finite number"):
        load_record(_write(tmp_path / "rec.json", rec))
    rec = {**report_record, "comparison": {**doc, "version": 5}}
    with pytest.raises(SchemaError, match=r"comparison\.version is 5, which this release cannot read"):
        load_record(_write(tmp_path / "rec.json", rec))


# ------------------------------------------------------------------ store manifests
@pytest.fixture()
def store(tmp_path, tiny_bert_dir, small_data_dir, run_cli) -> Path:
    sents = tmp_path / "protocol.txt"
    code, _, err = run_cli("align-uniform", "--data-dir", small_data_dir, "--splits", "dev", "--export-sentences",
                           sents)
    assert code == 0, err
    code, _, err = run_cli("encode", tiny_bert_dir, "--sentences", sents, "--out", tmp_path / "store", "--pooler",
                           "avg", "--shard-rows", "16", "--no-cache")
    assert code == 0, err
    return tmp_path / "store"


MANIFEST_CASES = [
    ("shard_rows", 0, "shard_rows must be an integer >= 1, not 0"),
    ("shard_rows", [16], "shard_rows must be an integer >= 1, not a list of 1"),
    ("n", None, "n must be an integer >= 1, not null"),
    ("dim", "32", "dim must be an integer >= 1, not '32'"),
    ("n_shards", 2, "n_shards is 2, but n = "),
    ("precision", "float64", "precision must be one of 'float32', 'float16'"),
    ("keys", "../keys.bin", "keys must be a plain file name inside the same directory"),
    ("keys", "/etc/passwd", "keys must be a plain file name inside the same directory"),
    ("version", 99, "version 99, written by a newer simcse-analysis"),
    ("pooler", ..., "pooler is missing"),
]


@pytest.mark.parametrize(("field", "value", "problem"), MANIFEST_CASES)
def test_hand_edited_manifest_is_one_error_naming_the_field(store, run_cli, small_data_dir, field, value, problem):
    mf = store / "manifest.json"
    _write(mf, _edit(json.loads(mf.read_text()), field, value))
    code, _out, err = run_cli("spectrum", "--embeddings", store, "--data-dir", small_data_dir, "--splits", "dev")
    assert_one_error(code, err, str(mf), problem)
    code, _, err = run_cli("uniformity", store)
    assert_one_error(code, err, str(mf), problem)


def test_a_keys_link_out_of_the_store_is_refused(store, run_cli, tmp_path):
    outside = tmp_path / "elsewhere.bin"
    outside.write_bytes((store / "keys.bin").read_bytes())
    (store / "keys.bin").unlink()
    (store / "keys.bin").symlink_to(outside)
    code, _, err = run_cli("uniformity", store)
    assert_one_error(code, err, "keys.bin", "outside the store")


# ------------------------------------------------------------------ checkpoint metadata and files
@pytest.mark.parametrize(("name", "content", "problem"), [
    ("simcse_analysis.json", {"post_transform": {"type": "affine", "file": "../../outside.safetensors"}},
     "post_transform.file must be a plain file name"),
    ("simcse_analysis.json", {"pooler": 5}, "pooler must be one of"),
    ("simcse_analysis.json", {"max_length": "128"}, "max_length must be an integer >= 1 or null"),
    ("simcse_analysis.json", DEEP, f"more than {MAX_DEPTH} deep"),
    ("modules.json", {"0": {"type": "Pooling"}}, "must be a list"),
    ("modules.json", [{"type": "sentence_transformers.models.Pooling", "path": "../x"}], "[0].path must be"),
    ("model.safetensors.index.json", {"weight_map": {"w": "../../etc/passwd"}}, "weight_map.w must be a plain file"),
    ("config.json", "[1]", "must hold a JSON object"),
])
def test_hostile_checkpoint_json_is_one_error_naming_the_file(run_cli, tiny_bert_copy, small_data_dir, name,
                                                              content, problem):
    f = _write(tiny_bert_copy / name, content)
    if name.endswith("index.json"):
        (tiny_bert_copy / "model.safetensors").unlink()  # so the index is what the loader reads
    code, out, err = run_cli("eval", tiny_bert_copy, "--tasks", "stsb", "--data-dir", small_data_dir, "--no-cache")
    assert_one_error(code, err, str(f), problem)
    assert out == ""


# ------------------------------------------------------------------ training runs, sweeps, trajectories
def test_hostile_run_record_is_one_error_naming_the_field(tmp_path):
    from trainers.rundir import RunResult

    run = tmp_path / "run"
    run.mkdir()
    _write(run / "run.json", {"config": {}, "status": "finished", "summary": {"steps": "ten"}})
    with pytest.raises(InputError, match=r"run\.json: summary\.steps must be an integer >= 0, not 'ten'"):
        RunResult.load(run)
    _write(run / "run.json", DEEP)
    with pytest.raises(InputError, match="deep"):
        RunResult.load(run)
    _write(run / "run.json", {"status": "finished"})
    with pytest.raises(InputError, match="config is missing"):
        RunResult.load(run)


def test_hostile_sweep_plan_is_one_error(tmp_path):
    from trainers.sweep_plan import SWEEP_FILE, load_manifest

    _write(tmp_path / SWEEP_FILE, {"kind": "grid", "keys": "lr"})
    with pytest.raises(InputError, match=r"sweep\.json: keys must be a list"):
        load_manifest(tmp_path)


def test_a_trajectory_line_with_a_string_for_a_number_names_file_and_line(tmp_path):
    from reports.collect import read_trajectory

    f = tmp_path / "trajectory.jsonl"
    good = {"step": 0, "alignment": 0.1, "uniformity": -2.0, "stsb_spearman": 70.0}
    f.write_text(json.dumps(good) + "\n" + json.dumps({**good, "step": 5, "alignment": "0.2"}) + "\n{torn")
    with pytest.raises(InputError, match=r"trajectory .*trajectory\.jsonl line 2: alignment must be a finite number"):
        read_trajectory(f)
    f.write_text(json.dumps(good) + "\n" + DEEP + "\n" + json.dumps(good) + "\n")
    with pytest.raises(InputError, match="line 2 is not JSON"):
        read_trajectory(f)


# ------------------------------------------------------------------ token and analysis JSON
def test_hostile_token_json_is_one_error(run_cli, tmp_path, report_record):
    from simcse_analysis.token_analysis import SCHEMA, TokenReport

    doc = {"schema": SCHEMA, "version": 1, "protocol": "p", "settings": {}, "data": {}, "results": [{"model": {}}]}
    with pytest.raises(SchemaError, match=r"results\[0\]\.layer_pooler is missing"):
        TokenReport.load(_write(tmp_path / "t.json", doc))
    with pytest.raises(SchemaVersionError, match="version 9, written by a newer"):
        TokenReport.load(_write(tmp_path / "t.json", {**doc, "version": 9}))
    from reports.collect import save_record

    rec = save_record(report_record, tmp_path / "rec.json")
    code, _, err = run_cli("report", "--from-json", rec, "--tokens-from", _write(tmp_path / "t.json", DEEP), "--out",
                           tmp_path / "p.html")
    assert_one_error(code, err, "t.json", "deep")


def test_hostile_analysis_json_names_the_field(run_cli, tmp_path, tiny_bert_dir, small_data_dir):
    from simcse_analysis.analysis import AnalysisReport

    out = tmp_path / "au.json"
    code, _, err = run_cli("align-uniform", tiny_bert_dir, "--data-dir", small_data_dir, "--splits", "dev", "--json",
                           out, "--no-cache")
    assert code == 0, err
    doc = json.loads(out.read_text())
    AnalysisReport.load(out)
    with pytest.raises(SchemaError, match=r"results\[0\]\.uniformity must be a finite number or null, not 'low'"):
        AnalysisReport.load(_write(tmp_path / "bad.json", _edit(doc, "results.0.uniformity", "low")))
    with pytest.raises(SchemaError, match=r"analysis must be one of"):
        AnalysisReport.load(_write(tmp_path / "bad.json", _edit(doc, "analysis", "everything")))
