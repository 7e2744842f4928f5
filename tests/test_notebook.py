"""examples/quickstart.ipynb runs in a real Jupyter kernel (nbclient + ipykernel) on a tiny BERT and the small
STS data, shows every figure as a plotly figure and prints the numbers `simcse-analyze report --json` writes."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "examples" / "quickstart.ipynb"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
FIGURE_CELLS = ("align_uniform", "spectra", "cosine_bins", "random_pairs", "layers")


def _kernel_spec_for_this_python(tmp_path: Path) -> str:
    """A kernel spec that starts ipykernel with this interpreter (the venv's), found via JUPYTER_PATH."""
    spec = tmp_path / "jupyter" / "kernels" / "simcse-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "simcse-analysis test", "language": "python"}))
    return "simcse-test"


def _outputs(cell: dict) -> tuple[list[str], list[dict]]:
    text = [o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream"]
    data = [o["data"] for o in cell.get("outputs", []) if o.get("output_type") in ("execute_result", "display_data")]
    return text, data


def _printed_json(cell: dict) -> dict:
    text, _ = _outputs(cell)
    return json.loads("".join(text).strip().splitlines()[-1])


@pytest.fixture(scope="module")
def executed(tmp_path_factory, tiny_bert_dir, small_data_dir, tiny_corpus):
    """The notebook executed on the tiny BERT, its run time, and the CLI's JSON for the same inputs."""
    tmp = tmp_path_factory.mktemp("notebook")
    cache_before = os.environ.get("SIMCSE_CACHE")
    cli_json = tmp / "cli.json"
    from simcse_analysis.cli import main

    os.environ["SIMCSE_CACHE"] = str(tmp / "cache-cli")  # the kernel encodes again, into its own cache
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the kernel (OMP_NUM_THREADS=1): some batch shapes round differently per thread count
    try:
        with pytest.raises(SystemExit) as done:
            main(["report", str(tiny_bert_dir), "--no-umap", "--data-dir", str(small_data_dir), "--json", str(cli_json)])
    finally:
        torch.set_num_threads(threads)
    assert done.value.code == 0

    kernel = _kernel_spec_for_this_python(tmp)
    env = {"SA_MODEL": str(tiny_bert_dir), "SA_DATA": str(small_data_dir), "SA_OUT": str(tmp / "nb.json"),
           "SA_TRAIN_FILE": str(tiny_corpus), "SA_RUN": str(tmp / "run"),
           "SIMCSE_CACHE": str(tmp / "cache-notebook"),
           "JUPYTER_PATH": str(tmp / "jupyter"), "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get(
               "PYTHONPATH", "")]), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    old = {k: os.environ.get(k) for k in env}
    old["SIMCSE_CACHE"] = cache_before
    os.environ.update(env)
    try:
        nb = nbformat.read(NOTEBOOK, as_version=4)
        t0 = time.perf_counter()
        nbclient.NotebookClient(nb, kernel_name=kernel, timeout=600,
                                resources={"metadata": {"path": str(tmp)}}).execute()
        seconds = time.perf_counter() - t0
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    print(f"\nexamples/quickstart.ipynb executed in {seconds:.1f} s (kernel start included)")
    return nb, json.loads(cli_json.read_text()), tmp


def _cell(nb, source_part: str) -> dict:
    cells = [c for c in nb.cells if c.cell_type == "code" and source_part in c.source]
    assert len(cells) == 1, source_part
    return cells[0]


def test_every_figure_cell_shows_a_plotly_figure(executed):
    nb, _, _ = executed
    for name in FIGURE_CELLS:
        _, data = _outputs(_cell(nb, f"analysis.figures.{name}()"))
        # plotly < 6.5 puts its script loader in an output of its own before the figure's
        figures = [d[PLOTLY_MIME] for d in data if PLOTLY_MIME in d]
        assert len(figures) == 1, f"{name}: {[list(d) for d in data]}"
        fig = figures[0]
        assert fig["data"], f"{name} has no traces"
    _, names = _outputs(_cell(nb, "analysis.figures.names()"))
    assert set(FIGURE_CELLS) <= set(eval(names[0]["text/plain"]))  # a list literal


def test_the_analysis_renders_its_tables_inline(executed):
    nb, cli, _ = executed
    _, data = _outputs(_cell(nb, "analysis = sa.analyze("))
    page = data[0]["text/html"]
    assert 'id="sts-table"' in page and 'id="isotropy-table"' in page
    assert cli["models"][0]["label"] in page


def test_the_notebook_numbers_equal_the_cli_json(executed):
    nb, cli, _ = executed
    printed = _printed_json(_cell(nb, "m = analysis.models[0]"))
    m = cli["models"][0]
    assert printed["label"] == m["label"]
    assert printed["sts"] == pytest.approx(m["sts_test"]["scores"], abs=1e-9)
    assert printed["stsb_dev"] == pytest.approx(m["sts_dev"]["scores"]["STSBenchmark"], abs=1e-9)
    assert printed["alignment"] == pytest.approx(m["align_uniform"]["alignment"], abs=1e-9)
    assert printed["uniformity"] == pytest.approx(m["align_uniform"]["uniformity"], abs=1e-9)
    assert printed["random_pair_cosine"] == pytest.approx(m["anisotropy"]["summary"]["random_pair_cosine"], abs=1e-9)
    assert printed["isoscore"] == pytest.approx(m["anisotropy"]["summary"]["isoscore"], abs=1e-9)
    # the summary the CLI wrote is the same record
    assert m["summary"]["alignment"] == pytest.approx(printed["alignment"], abs=1e-12)
    # evaluate_sts on its own gives the report's STS-B test score
    eval_cell = _printed_json(_cell(nb, "sa.evaluate_sts(MODEL"))
    assert eval_cell["eval_stsb"] == pytest.approx(m["sts_test"]["scores"]["STSBenchmark"], abs=1e-9)


def test_the_saved_record_reads_back(executed):
    nb, _, tmp = executed
    assert _printed_json(_cell(nb, "analysis.save(OUT)")) == {"reloaded_equal": True}
    saved = json.loads((tmp / "nb.json").read_text())
    assert saved["schema"] == "simcse-analysis/report" and saved["version"] == 2


def test_the_training_cell_runs_and_logs_to_tensorboard(executed):
    nb, _, tmp = executed
    _, data = _outputs(_cell(nb, "run = sa.train(config"))
    page = data[0]["text/html"]
    assert page.count("<tr>") == 4 and "finished, 2 steps" in page  # header + start, best, last
    printed = _printed_json(_cell(nb, '"best_step": run.best_step'))
    trajectory = [json.loads(line) for line in (tmp / "run" / "trajectory.jsonl").read_text().splitlines()]
    assert printed["steps"] == [e["step"] for e in trajectory] == [0, 1, 2]
    assert printed["best_stsb_spearman"] == max(e["stsb_spearman"] for e in trajectory)
    assert list((tmp / "run" / "tensorboard").glob("events.out.tfevents.*"))


def test_the_page_cell_adds_the_token_section(executed):
    nb, _, _ = executed
    printed = _printed_json(_cell(nb, "sa.report(analysis"))
    assert printed["token_results"] == 1
    assert printed["repr"].startswith("Report(") and len(printed["repr"]) < 300  # not the whole page


def test_the_training_cell_trains_on_the_data_the_readme_points_at(data_dir, monkeypatch):
    """Without SA_TRAIN_FILE the cell finds its corpus in the data directory: ../shared/data holds the head of
    SimCSE's corpus (wiki1m_for_simcse.head.txt), not the full wiki1m_for_simcse.txt."""
    cell = _cell(nbformat.read(NOTEBOOK, as_version=4), "TRAIN_FILE")
    monkeypatch.delenv("SA_TRAIN_FILE", raising=False)
    monkeypatch.delenv("SA_RUN", raising=False)
    configs = []

    class FakeAPI:  # the cell's calls, recorded instead of training
        @staticmethod
        def TrainConfig(*args, **kwargs):
            configs.append(args)
            return args

        @staticmethod
        def train(config, **kwargs):
            return config

    ns = {"os": os, "sa": FakeAPI, "DATA": str(data_dir), "MODEL": "all-MiniLM-L6-v2"}
    exec(compile(cell.source, "training cell", "exec"), ns)  # noqa: S102 (the notebook's own cell)
    assert Path(ns["TRAIN_FILE"]).is_file() and configs[0][2] == [ns["TRAIN_FILE"]]
