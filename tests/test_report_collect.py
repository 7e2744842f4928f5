"""The report record: what is gathered per checkpoint, how it relates to the library's own figures,
trajectories and baselines, and JSON round trips and merges."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import HOSTILE_SENTENCE

from reports.collect import (
    FIRST_LAST_BASELINE,
    load_record,
    merge_records,
    random_pair_histogram,
    read_trajectory,
    resolve_model_arg,
    save_record,
    split_pooler,
)
from simcse_analysis.errors import InputError
from simcse_analysis.metrics.anisotropy import random_pair_cosine


def test_record_holds_every_section_for_each_checkpoint(report_record):
    models = report_record["models"]
    assert [m["pooler"] for m in models] == ["avg", "avg_first_last", "avg"]
    assert [m["dim"] for m in models] == [32, 48, 32]  # different widths are compared by metric only
    for m in models:
        assert set(m["sts_test"]["scores"]) == {"STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark",
                                                "SICKRelatedness", "avg"}
        assert m["sts_test"]["split"] == "test" and m["sts_dev"]["split"] == "dev"
        assert m["fingerprint"] and len(m["fingerprint"]) == 64
        assert len(m["umap"]["x"]) == len(report_record["umap"]["sentences"])
        assert len(m["spectrum"]["uncentered"]["singular_values"]) == m["dim"]
    json.dumps(report_record, allow_nan=False)  # standard JSON, nothing non-finite


def test_baselines_are_marked_by_metadata_or_by_the_first_last_pooler(report_record):
    assert [m["baseline"] for m in report_record["models"]] == [None, FIRST_LAST_BASELINE, "whitening"]


def test_run_directory_contributes_its_best_checkpoint_and_trajectory(report_record, report_models):
    run = report_models["run"]
    (traj,) = report_record["trajectories"]
    assert traj["model"] == 0 and traj["source"] == str((run / "trajectory.jsonl").resolve())
    assert [p["step"] for p in traj["points"]] == [0, 10, 20, 30]
    assert report_record["models"][0]["path"] == str((run / "best").resolve())


def test_random_pair_histogram_counts_the_anisotropy_summarys_pairs(report_record):
    for m in report_record["models"]:
        h, summary = m["random_pairs"], m["anisotropy"]["summary"]
        assert sum(h["counts"]) == summary["n_pairs"]
        assert h["mean"] == pytest.approx(summary["random_pair_cosine"], abs=1e-9)


def test_random_pair_histogram_uses_the_metric_modules_pairs():
    x = np.random.default_rng(2).standard_normal((300, 16))
    h = random_pair_histogram(x, n_pairs=2000, seed=5, bins=40)
    assert h["mean"] == pytest.approx(random_pair_cosine(x, n_pairs=2000, seed=5).mean, abs=1e-12)
    assert len(h["edges"]) == 41 and sum(h["counts"]) == 2000  # every pair falls in a bin
    assert -1.0 <= h["edges"][0] < h["edges"][-1] <= 1.0
    widths = np.diff(h["edges"])
    assert np.allclose(widths, widths[0]) and h["edges"][-1] - h["edges"][0] < 2  # the occupied range only


def test_dev_markers_use_the_trainers_protocol(report_record, report_models, hostile_data_dir):
    """The trajectory plane's checkpoint markers equal what the trainer logs for the same weights."""
    from simcse_analysis.encoder import load_encoder
    from trainers.evaluation import dev_metrics, load_dev_set

    enc = load_encoder(report_models["run"] / "best", pooler="avg")
    logged = dev_metrics(enc.encode, load_dev_set(hostile_data_dir))
    dev = report_record["models"][0]["dev_align_uniform"]
    assert dev["alignment"] == pytest.approx(logged["alignment"], rel=1e-5)
    assert dev["uniformity"] == pytest.approx(logged["uniformity"], rel=1e-5)
    assert report_record["models"][0]["sts_dev"]["scores"]["STSBenchmark"] == pytest.approx(
        logged["stsb_spearman"], abs=1e-9)


def test_umap_sentences_are_the_protocol_sentences_coloured_by_their_split(report_record, hostile_data_dir):
    """``colour="split"`` (the fixture's): every STS-B sentence, coloured by the split it first appears in, a
    property of the sentence (not the gold rating of its pairs); the maps are one joint, aligned fit."""
    from simcse_analysis.sts_data import load_sts

    um = report_record["umap"]
    n = report_record["data"]["protocol_data"]["n_sentences"]
    assert len(um["sentences"]) == n  # sample size 1000 > n: every sentence
    assert HOSTILE_SENTENCE in um["sentences"] and um["fit"] == "aligned"
    assert um["category_order"] == ["train", "dev", "test"]
    train = {s for sub in load_sts("STSBenchmark", hostile_data_dir, "train") for s in (*sub.sentences1, *sub.sentences2)}
    assert all((c == "train") == (s in train) for s, c in zip(um["sentences"], um["categories"]))
    assert um["categories"][um["sentences"].index(HOSTILE_SENTENCE)] == "train"


def test_gold_rating_colours_are_refused_and_corpus_is_the_default():
    from reports.umap_map import UMAPSettings

    assert UMAPSettings().colour == "corpus"
    with pytest.raises(InputError, match="belongs to a sentence pair"):
        UMAPSettings(colour="bin")
    assert UMAPSettings.from_dict({"colour": "bin", "seed": 3}) == UMAPSettings(seed=3)  # older records still read


def test_record_survives_a_json_round_trip(report_record, tmp_path):
    path = save_record(report_record, tmp_path / "deep" / "record.json")
    assert load_record(path) == report_record


@pytest.mark.parametrize("content, match", [
    ("{not json", "not valid JSON"),
    ('{"schema": "something-else"}', "not a report record"),
    ('[1, 2]', "not a report record"),
])
def test_unreadable_or_foreign_json_names_the_file(tmp_path, content, match):
    f = tmp_path / "bad.json"
    f.write_text(content)
    with pytest.raises(InputError, match=match) as e:
        load_record(f)
    assert str(f) in str(e.value)


def test_missing_json_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_record(tmp_path / "absent.json")


def test_merging_records_concatenates_models_and_renumbers_trajectories(report_record):
    merged = merge_records([report_record, report_record])
    assert len(merged["models"]) == 6
    assert [t["model"] for t in merged["trajectories"]] == [0, 3]
    assert len({m["label"] for m in merged["models"]}) == 6  # labels made unique
    assert len(merged["provenance"]) == 2


def test_merging_records_with_different_settings_is_refused(report_record):
    other = json.loads(json.dumps(report_record))
    other["settings"]["analysis"]["seed"] = 99
    with pytest.raises(InputError, match="different settings"):
        merge_records([report_record, other])


def test_model_argument_may_name_a_pooler():
    assert split_pooler("all-MiniLM-L6-v2@avg_first_last") == ("all-MiniLM-L6-v2", "avg_first_last")
    assert split_pooler("user@host-model") == ("user@host-model", None)  # not a pooler: part of the name
    assert resolve_model_arg("x@cls").pooler == "cls"


def test_trajectory_reader_skips_a_torn_last_line_and_names_a_bad_one(tmp_path):
    f = tmp_path / "trajectory.jsonl"
    good = [{"step": 0, "stsb_spearman": 10.0, "alignment": 0.5, "uniformity": -1.0},
            {"step": 5, "stsb_dev": 12.0, "alignment": 0.4, "uniformity": -1.2}]
    f.write_text("".join(json.dumps(e) + "\n" for e in good) + '{"step": 10, "stsb_sp')
    points = read_trajectory(f)
    assert [p["step"] for p in points] == [0, 5]
    assert [p["stsb_spearman"] for p in points] == [10.0, 12.0]  # stsb_dev read as the same field
    f.write_text(json.dumps(good[0]) + "\n{oops}\n" + json.dumps(good[1]) + "\n")
    with pytest.raises(InputError, match="line 2 is not JSON"):
        read_trajectory(f)
    f.write_text(json.dumps({"step": 1, "alignment": 0.1}) + "\n")
    with pytest.raises(InputError, match="lacks uniformity, stsb_spearman"):
        read_trajectory(f)


def test_run_directory_without_checkpoints_is_an_input_error(tmp_path, report_models):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(report_models["run"] / "trajectory.jsonl", run)
    with pytest.raises(InputError, match="without a best/ or last/ checkpoint"):
        resolve_model_arg(str(run))


def test_random_pair_histogram_of_identical_embeddings_sits_at_cosine_one():
    h = random_pair_histogram(np.ones((10, 4)), n_pairs=100, seed=0, bins=10)
    assert h["edges"][-1] == 1.0 and h["counts"][-1] == 100 and h["mean"] == pytest.approx(1.0)


class _LayeredSource:
    """Precomputed embeddings plus a per-layer stack (layer 0 all zeros: cosine undefined there)."""

    layer_pooler = "avg"

    def __init__(self, emb: np.ndarray, sentences: list[str]) -> None:
        from simcse_analysis.analysis import PrecomputedSource

        self.inner = PrecomputedSource(emb, sentences, name="layered")
        self.row = {s: i for i, s in enumerate(sentences)}
        self.stack = np.stack([np.zeros_like(emb), emb + 1.0, emb])

    def describe(self) -> dict:
        return self.inner.describe()

    def embed(self, sentences):
        return self.inner.embed(sentences)

    def embed_layers(self, sentences):
        return self.stack[:, [self.row[s] for s in sentences]]


def test_layers_are_summarised_on_a_seeded_sample_and_an_undefined_layer_is_left_out(small_data_dir):
    from reports.collect import anisotropy_with_layers
    from simcse_analysis.analysis import AnalysisSettings, load_protocol_data
    from simcse_analysis.metrics.anisotropy import anisotropy_summary

    settings = AnalysisSettings(cosine_pairs=500, seed=4)
    data = load_protocol_data(settings, small_data_dir)
    n = len(data.sentences)
    emb = np.random.default_rng(0).standard_normal((n, 8))
    result, note = anisotropy_with_layers(_LayeredSource(emb, data.sentences), data, settings, layer_sentences=50)
    assert result["summary"]["n_points"] == n  # the final embeddings: every sentence
    assert result["layers"][0] is None and note.startswith("per-layer figures left out for layer 0: ")
    assert [s["n_points"] for s in result["layers"][1:]] == [50, 50] and result["layer_sentences"] == 50
    from reports.umap_map import subsample

    expected = anisotropy_summary(emb[subsample(n, 50, 4)], n_pairs=500, seed=4)
    assert result["layers"][2]["isoscore"] == pytest.approx(expected.isoscore)
    every, _ = anisotropy_with_layers(_LayeredSource(emb, data.sentences), data, settings, layer_sentences=None)
    assert every["layers"][2]["n_points"] == n


def test_without_layers_only_the_final_embeddings_are_summarised(small_data_dir):
    from reports.collect import anisotropy_with_layers
    from simcse_analysis.analysis import AnalysisSettings, load_protocol_data

    settings = AnalysisSettings(cosine_pairs=100, layers=False)
    data = load_protocol_data(settings, small_data_dir)
    emb = np.random.default_rng(0).standard_normal((len(data.sentences), 8))
    result, note = anisotropy_with_layers(_LayeredSource(emb, data.sentences), data, settings, 100)
    assert result["layers"] is None and note is None
