"""The report page: self-contained, escaped, with sortable tables and a provenance header; file writing."""

from __future__ import annotations

import json
import re

import pytest
from conftest import HOSTILE_DIR

from reports.html import render_report, write_report
from simcse_analysis.errors import InputError
from simcse_analysis.io_utils import check_writable
from simcse_analysis.io_utils import write_output_text as write_text


@pytest.fixture(scope="module")
def page(report_record) -> str:
    return render_report(report_record)


def test_plotly_js_is_embedded_once_compressed_and_nothing_is_loaded_from_elsewhere(page):
    from plotly.offline import get_plotlyjs

    from reports.page import unpack_plotlyjs

    assert unpack_plotlyjs(page) == get_plotlyjs()  # the plotly package's own bundle, byte for byte
    assert page.count('id="plotly-js-gz"') == 1
    assert len(page.encode()) < len(get_plotlyjs().encode()) / 2  # gzip + base64: well under the raw bundle
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=", page, flags=re.IGNORECASE)
    assert "cdn.plot.ly" not in page and "https://" not in page.split("<footer>")[0]


def test_page_holds_only_the_script_blocks_it_writes(page, report_record):
    figures = page.count('class="plotly-graph-div"')
    assert figures == 7  # plane, trajectories, spectra, cosine bins, random pairs, layers, UMAP
    assert page.count('<script type="application/json" id="figdata-') == figures  # inert data, drawn lazily
    assert len(re.findall(r"<script\b", page)) == len(re.findall(r"</script>", page)) == figures + 2


def test_the_summary_comes_first_and_the_provenance_last_collapsed(page):
    main = page[page.index("<main>"):]
    assert main.index('<section id="summary">') < main.index("<section", main.index('<section id="summary">') + 1)
    assert main.index('id="sts"') < main.index('id="fig-align-uniform"') < main.index('id="provenance"')
    assert re.search(r'<section id="provenance" class="fold"><details>', page)  # collapsed
    summary = main[:main.index("</section>")]
    assert "STS avg" in summary and "95% CI" in summary and "Significant differences" in summary
    assert len(re.findall(r"ℓ_uniform −?-?\d", summary)) == 3  # the geometry of every checkpoint in one sentence


def test_sentence_and_directory_html_is_escaped_in_text_and_in_figure_json(page, report_record):
    assert "<img src=x" not in page
    assert html_escaped(HOSTILE_DIR) in page  # header and tables
    assert '<script>alert("x")' not in page
    assert "\\u003cscript\\u003ealert" not in page  # figure JSON holds the HTML-escaped sentence ...
    assert "&lt;script&gt;alert(\\\"x\\\")&lt;\\u002fscript&gt;" in page  # ... with "/" escaped too


def html_escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_header_names_checkpoints_fingerprints_data_files_command_and_packages(page, report_record):
    for m in report_record["models"]:
        assert m["fingerprint"] in page and html_escaped(m["label"]) in page
    for f in report_record["data"]["files"]:
        assert f["sha256"] in page
    assert "simcse-analyze report (test fixture)" in page
    assert "plotly " + report_record["provenance"][0]["packages"]["plotly"] in page
    assert report_record["provenance"][0]["created"] in page
    assert "baseline: whitening" in page and "baseline: first–last average" in page


def test_sts_table_is_sortable_with_numeric_keys_and_the_best_value_in_bold(page, report_record):
    table = page[page.index('id="sts-table"'):page.index("</table>", page.index('id="sts-table"'))]
    rows = re.findall(r"<tr>(.*?)</tr>", table)[1:]
    assert len(rows) == 3
    avgs = [m["sts_test"]["scores"]["avg"] for m in report_record["models"]]
    keys = [float(re.findall(r'data-v="([^"]*)"', r)[7]) for r in rows]  # 8th numeric cell = Avg.
    assert keys == pytest.approx(avgs)
    best = max(range(3), key=lambda i: avgs[i])
    assert re.findall(r"<td[^>]*>", rows[best])[8] == f'<td data-v="{float(avgs[best])!r}" class="best">'


def test_rebuilding_from_the_saved_record_gives_the_same_page(report_record, page, tmp_path):
    from reports.collect import load_record, save_record

    save_record(report_record, tmp_path / "r.json")
    assert render_report(load_record(tmp_path / "r.json")) == page


def test_report_is_written_into_a_new_directory_atomically(report_record, tmp_path):
    out = write_report(report_record, tmp_path / "new" / "dir" / "report.html")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temporary left behind
    assert out.stat().st_mode & 0o044  # readable by others, like any page


def test_unwritable_output_paths_are_input_errors(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write"):
        check_writable(blocker / "report.html")  # parent is a file
    with pytest.raises(InputError, match="is a directory"):
        write_text(tmp_path, "x")


def test_checking_an_existing_output_leaves_it_untouched(tmp_path):
    target = tmp_path / "keep.html"
    target.write_text("old report")
    check_writable(target)
    assert target.read_text() == "old report" and sorted(p.name for p in tmp_path.iterdir()) == ["keep.html"]


def test_figures_without_trajectories_layers_or_umap_are_left_out(report_record):
    rec = json.loads(json.dumps(report_record))
    rec["trajectories"], rec["umap"] = [], None
    for m in rec["models"]:
        m["umap"], m["anisotropy"]["layers"] = None, None
    page = render_report(rec)
    assert page.count('class="plotly-graph-div"') == 4
    assert 'id="fig-umap"' not in page and 'id="fig-trajectories"' not in page


def test_empty_record_is_refused(report_record):
    with pytest.raises(InputError, match="no checkpoints"):
        render_report({**report_record, "models": []})
