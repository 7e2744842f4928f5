"""Pages in one visual language, without a browser: the comparison page's figures and movers, the token
section's grouping, the sweep page's plane, and the jointly fitted UMAP maps."""

from __future__ import annotations

import numpy as np
import pytest

from reports import figures as F
from reports.page import figure_json


def _cmp_doc() -> dict:
    def model(label: str, path: str, pooler: str, shift: float) -> dict:
        scores = {t: {"value": 70 + shift + i, "low": 68 + shift + i, "high": 72 + shift + i}
                  for i, t in enumerate(("STS12", "STSBenchmark", "avg"))}
        scores["alignment"] = {"value": 0.3 + shift / 100, "low": 0.29, "high": 0.33}
        scores["uniformity"] = {"value": -2.0 - shift / 10, "low": -2.2, "high": -1.9}
        return {"label": label, "model": {"model": path, "pooler": pooler, "fingerprint": f"fp-{label}"},
                "scores": scores}

    rows = [{"baseline": "A@avg", "other": o, "metric": t, "baseline_value": 70.0, "other_value": 71.0, "delta": d,
             "low": d - 1, "high": d + 1, "p_value": 0.01, "p_holm": p, "verdict": v, "higher_is_better": True,
             "method": ""}
            for o, d, p, v in (("B@avg", 1.5, 0.01, "better"), ("C@cls", -0.2, 0.8, "no detectable difference"))
            for t in ("STS12", "STSBenchmark", "avg")]
    mover = {"task": "STS12", "subset": "MSRpar", "sentence1": "a", "sentence2": "b", "gold": 4.0, "gold_rank": 10.0,
             "rank_baseline": 200.0, "rank_other": 20.0, "cos_baseline": 0.1, "cos_other": 0.8, "move": -180.0}
    movers = ([mover, {**mover, "sentence1": "b", "sentence2": "a"},  # the same pair, other order: a duplicate
               {**mover, "sentence1": "c", "rank_other": 390.0, "move": 190.0}]
              + [{**mover, "sentence1": f"s{i}", "move": float(i), "rank_other": 200.0 + i} for i in range(20)])
    return {"schema": "simcse-analysis/comparison", "version": 1, "settings": {"alpha": 0.05, "k": 5},
            "models": [model("A@avg", "/m/a", "avg", 0), model("B@avg", "/m/b", "avg", 2), model("C@cls", "/m/c", "cls", 1)],
            "rows": rows, "notes": ["Δ = other − baseline"],
            "pairs": [{"baseline": "A@avg", "other": "B@avg", "cka": [[1.0, 0.5], [0.4, 0.9]],
                       "cka_debiased_diagonal": [0.9, 0.8], "knn_jaccard": 0.5, "movers": movers},
                      {"baseline": "A@avg", "other": "C@cls", "cka": None, "cka_debiased_diagonal": None,
                       "knn_jaccard": 0.4, "movers": movers[:2]}]}


@pytest.fixture(scope="module")
def compare_page() -> str:
    from reports.compare_page import render_compare_page

    return render_compare_page(_cmp_doc(), plotlyjs="/* plotly stand-in */")


def test_compare_page_bars_forest_and_plane_give_each_checkpoint_one_colour(compare_page):
    bars = {t["name"]: t["marker"]["color"] for t in figure_json(compare_page, "sts")["data"]}
    forest = {t["name"]: t["marker"]["color"] for t in figure_json(compare_page, "forest")["data"] if t.get("name")}
    assert bars == {"/m/a [avg]": F.colour(0), "/m/b [avg]": F.colour(1), "/m/c [cls]": F.colour(2)}
    assert forest == {k: v for k, v in bars.items() if k != "/m/a [avg]"}  # the forest plot in the bars' colours


def test_compare_page_plane_has_uniformity_on_x_like_every_page(compare_page):
    plane = figure_json(compare_page, "align-uniform")
    markers = [t for t in plane["data"] if t.get("mode") == "markers+text"]
    assert [(t["x"][0], t["y"][0]) for t in markers] == [(-2.0, 0.3), (-2.2, 0.32), (-2.1, 0.31)]
    assert plane["layout"]["xaxis"]["title"]["text"].startswith("ℓ_uniform")


def test_compare_page_has_a_summary_first_provenance_last_and_one_name_per_checkpoint(compare_page):
    main = compare_page[compare_page.index("<main>"):]
    assert main.index('id="summary"') < main.index('id="verdicts"') < main.index('id="provenance"')
    summary = main[:main.index("</section>")]
    assert "1 of" not in summary and "3 of 6 paired differences have a 95% simultaneous interval that excludes 0" in summary
    assert "/m/b [avg]</b> vs /m/a [avg]" in summary and "STS avg" in summary
    assert "B@avg" not in compare_page.split('id="provenance"')[0]  # the page names, not the document's labels
    assert "fp-B@avg" in compare_page  # provenance: fingerprints


def test_movers_are_collapsed_each_pair_once_top_ten_per_task_with_gold_rank_and_effect():
    from reports.compare_page import movers_rows

    rows = movers_rows(_cmp_doc())
    b = [r for r in rows if r["other"] == "B@avg"]
    assert len(b) == 10  # 23 movers of one task → the 10 that moved most, the reversed duplicate dropped
    keys = [(r["task"], *sorted((r["sentence1"], r["sentence2"]))) for r in rows if r["other"] == "B@avg"]
    assert len(set(keys)) == len(keys)
    by_sentence = {r["sentence1"]: r for r in b}
    assert by_sentence["a"]["effect"] == "fixed"  # rank 200 → 20, gold rank 10: closer to the gold ranking
    assert by_sentence["c"]["effect"] == "broken"  # rank 200 → 390, away from it
    assert len([r for r in rows if r["other"] == "C@cls"]) == 1


def test_token_results_of_the_same_weights_and_layer_pooling_are_drawn_once():
    from reports.token_page import grouped

    cps = F.Checkpoints()
    cps.add("m [avg]", {"model": "m", "pooler": "avg", "fingerprint": "w"})
    cps.add("m [avg_first_last]", {"model": "m", "pooler": "avg_first_last", "fingerprint": "w"})
    cps.add("m [cls]", {"model": "m", "pooler": "cls", "fingerprint": "w"})
    results = [{"model": {"model": "m", "pooler": p, "fingerprint": "w"}, "layer_pooler": lp}
               for p, lp in (("avg", "avg"), ("avg_first_last", "avg"), ("cls", "cls_before_pooler"))]
    out = grouped(results, cps)
    assert [(r["label"], r["colour"]) for r in out] == [("m [avg] = m [avg_first_last]", F.colour(0)),
                                                        ("m [cls]", F.colour(2))]


def test_sweep_plane_puts_uniformity_on_x_and_drops_the_fig2_swap():
    from reports.sweep_page import align_uniform_figure

    traj = [{"step": s, "alignment": 0.5 - s / 1000, "uniformity": -1 - s / 100, "stsb_spearman": 50 + s / 10}
            for s in (0, 10)]
    doc = {"points": [{"label": "p=0.1", "runs": [{"seed": 1, "trajectory": traj}], "mean_trajectory": traj}]}
    fig = align_uniform_figure(doc)
    mean = next(t for t in fig.data if t.mode == "lines+markers")
    assert list(mean.x) == [-1.0, -1.1] and list(mean.y) == [0.5, 0.49]
    assert fig.layout.xaxis.title.text.startswith("ℓ_uniform")


def test_procrustes_undoes_a_rotation_reflection_scale_and_shift():
    from reports.umap_map import procrustes

    rng = np.random.default_rng(0)
    target = rng.standard_normal((50, 2))
    theta = 1.1
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]) @ np.diag([1, -1])
    moved = 3.0 * target @ rot + np.array([5.0, -2.0])
    np.testing.assert_allclose(procrustes(moved, target), target, atol=1e-10)


def test_jointly_fitted_maps_of_the_same_space_coincide():
    """Two checkpoints with the same geometry (one a rotated copy in a higher dimension) get maps whose clusters
    sit in the same places, where independent fits would differ by an arbitrary rotation or reflection."""
    from reports.umap_map import UMAPSettings, umap_maps

    rng = np.random.default_rng(1)
    centres = np.eye(12)[:3] * 5
    x = np.concatenate([c + 0.3 * rng.standard_normal((40, 12)) for c in centres]).astype(np.float32)
    q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    y = (np.pad(x, ((0, 0), (0, 4))) @ q).astype(np.float32)  # same cosines, 16 dims
    a, b = umap_maps([x, y], UMAPSettings(n_neighbors=10, n_epochs=80, seed=0))
    span = np.ptp(a, axis=0).max()
    ca = np.stack([a[40 * k:40 * (k + 1)].mean(axis=0) for k in range(3)])
    cb = np.stack([b[40 * k:40 * (k + 1)].mean(axis=0) for k in range(3)])
    dist = np.linalg.norm(ca[:, None] - cb[None], axis=-1)
    assert (dist.argmin(axis=0) == np.arange(3)).all()  # each cluster lands nearest its own place
    assert dist.diagonal().max() < 0.25 * span


def test_the_same_weights_under_two_poolers_are_analysed_once(tiny_bert_dir, monkeypatch):
    """Token analyses depend on the weights and the per-layer pooling only: ``avg`` and ``avg_first_last`` of
    one checkpoint share one analysis; ``cls_before_pooler`` pools layers by [CLS], so it gets its own."""
    import simcse_analysis.token_analysis as ta
    from simcse_analysis.encoder import load_encoder

    calls = []
    real = ta.analyze_tokens
    monkeypatch.setattr(ta, "analyze_tokens", lambda enc, *a, **k: calls.append(enc.pooler) or real(enc, *a, **k))
    words = ["the cat sat on the mat", "a dog ran in the park", "the bank of the river was wet"] * 4
    encs = [load_encoder(tiny_bert_dir, pooler=p, device="cpu", use_cache=False)
            for p in ("avg", "avg_first_last", "cls_before_pooler")]
    report = ta.run_token_analysis(encs, ta.TokenCorpus(words, "test", []), ta.TokenSettings(min_count=3))
    assert calls == ["avg", "cls_before_pooler"]
    a, b, c = (r.to_dict() for r in report.results)
    assert [r["model"]["pooler"] for r in (a, b, c)] == ["avg", "avg_first_last", "cls_before_pooler"]
    assert {**a, "model": None} == {**b, "model": None} and c["layer_pooler"] == "cls_before_pooler"
