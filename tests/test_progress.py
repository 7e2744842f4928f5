"""Staged progress (issue 24, item 3): stage labels, an outer bar over the whole job with elapsed time and ETA, one
progress flag for every command, progress on standard error only, and a training bar that says when it evaluates."""

from __future__ import annotations

import io
import json
import re

import pytest

from simcse_analysis import progress


@pytest.fixture()
def shown_at_once(monkeypatch):
    """Progress lines from the first moment (jobs normally stay silent for their first second)."""
    monkeypatch.setattr(progress.Job, "default_delay", 0.0)


def _job(**kw) -> tuple[progress.Job, io.StringIO]:
    buf = io.StringIO()
    return progress.Job("demo", file=buf, delay=0.0, tty=False, **kw), buf


# ----------------------------------------------------------------------------------------- the job itself
def test_a_stage_names_its_section_and_work_and_the_job_states_share_elapsed_and_eta():
    job, buf = _job()
    job.plan(300, "sentences")
    with job.section("[2/3 m@cls_before_pooler]"), job.stage(progress.sentences_label("STS14", 5999), 100):
        for _ in job.batches(range(0, 100, 10), 100, 10):
            pass
    line = buf.getvalue().splitlines()[0]
    assert line.startswith("[2/3 m@cls_before_pooler] STS14 (5,999 sentences)  [")
    assert re.search(r"of 300 sentences, \d\d:\d\d elapsed, ETA (\?|\d\d:\d\d)\]$", line), line
    assert job.done == 100 and job.total == 300


def test_planned_work_a_stage_does_not_do_leaves_the_total():
    """Cached sentences are planned (an upper bound) and settled when their stage ends, so the job still ends
    at 100% and its ETA counts only the work left."""
    job, _ = _job()
    job.plan(250, "sentences")
    with job.stage("a", 100):
        job.advance(40, "sentences")  # 60 came from the cache
    assert (job.done, job.total) == (40, 190)
    with job.stage("b", 150):
        job.advance(150, "sentences")
    assert job.done == job.total == 190


def test_covered_work_is_planned_once():
    """A caller that planned a library call's work (report → evaluate_sts) covers the call's own plan and stages."""
    job, _ = _job()
    job.plan(100, "sentences")
    with job.stage("STS test", 100), job.covered():
        job.plan(100, "sentences")  # the library's own plan: already counted
        with job.stage("STS12", 60):  # settled by the enclosing stage
            job.advance(30, "sentences")
            assert job.label() == "STS test › STS12"
        assert job.total == 100
    assert (job.done, job.total) == (30, 30)


def test_unplanned_encoding_still_fills_the_job():
    """A command whose library call plans nothing (whiten's corpus encoding) still gets a bar that ends at 100%."""
    job, _ = _job()
    for _ in job.batches(range(0, 100, 32), 100, 32):
        assert job.total == 100
    assert (job.done, job.total, job.unit) == (100, 100, "sentences")


def test_work_in_another_unit_does_not_move_the_job():
    """The sentences encoded by an evaluation inside a training job move the stage, not the step count."""
    job, _ = _job()
    job.plan(40, "steps")
    job.advance(1, "steps")
    job.advance(500, "sentences")
    assert (job.done, job.total, job.unit) == (1, 40, "steps")


def test_the_eta_is_the_remaining_work_at_the_rate_so_far():
    job = progress.Job("demo", file=io.StringIO(), delay=0.0, tty=False)
    job.started -= 10.0
    job.total, job.done = 400, 100  # 100 done in 10 s: 300 left take 30 s
    assert job.eta() == pytest.approx(30.0, abs=0.5)
    assert "25% of 400 items" in job.status() and "ETA 00:3" in job.status()
    assert progress._fmt_time(30.0) == "00:30" and progress._fmt_time(3725) == "1:02:05"


def test_a_disabled_job_writes_nothing_and_silences_the_encoder_bar():
    buf = io.StringIO()
    with progress.job("quiet", enabled=False, file=buf, delay=0.0, tty=True) as job:
        with progress.stage("x", 10):
            list(progress.batches(range(0, 5000, 64), 5000, 64))
        assert progress.current() is job
    assert buf.getvalue() == "" and progress.current() is None


def test_a_job_opened_inside_another_is_the_same_job():
    with progress.job("outer", enabled=False) as outer, progress.job("inner", enabled=True) as inner:
        assert inner is outer and not inner.enabled


def test_on_a_terminal_two_bars_show_the_job_and_the_stage():
    buf = io.StringIO()
    job = progress.Job("compare", file=buf, delay=0.0, tty=True)
    job.plan(200, "sentences")
    with job.section("[1/2 m@avg]"), job.stage("STS12 (200 sentences)", 200):
        for _ in job.batches(range(0, 200, 50), 200, 50):
            pass
    job.close()
    text = buf.getvalue()
    assert "compare: 100%" in text and "200/200 sentences" in text
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d\]", text)  # elapsed < remaining
    assert "[1/2 m@avg] STS12 (200 sentences)" in text  # the stage's own bar, under the job's


def test_without_a_job_a_long_encoding_keeps_its_own_bar_and_a_short_one_none():
    assert isinstance(progress.batches(range(3), 100, 64), range)
    assert not isinstance(progress.batches(range(40), progress.STANDALONE_THRESHOLD, 64), range)
    assert isinstance(progress.batches(range(40), 10_000, 64, show=False), range)


def test_new_counts_counts_each_distinct_text_once_in_order():
    assert progress.new_counts([["a", "b", "a"], ["b", "c"], ["a"], ["d", "d"]]) == [2, 1, 0, 1]


# ----------------------------------------------------------------------------------------- the library reports
def test_the_encoder_reports_what_it_encodes_and_not_what_it_finds_cached(tiny_bert_dir, tmp_path):
    from simcse_analysis.encoder import load_encoder

    enc = load_encoder(tiny_bert_dir, cache_dir=tmp_path / "cache", device="cpu")
    texts = [f"sentence number {i}" for i in range(30)] + ["sentence number 0"]
    buf = io.StringIO()
    with progress.job("demo", file=buf, delay=0.0, tty=False) as job, job.stage(
            progress.sentences_label("demo", 30), 30):
        enc.encode(texts, batch_size=8)
        enc.encode(texts, batch_size=8)  # all cached now: nothing encoded
    assert job.done == 30 and "demo (30 sentences)" in buf.getvalue()


def test_compare_shows_every_checkpoint_task_and_stage(tiny_bert_dir, small_data_dir, shown_at_once, capsys,
                                                       tmp_path):
    from simcse_analysis.comparison import CompareSettings, compare

    with progress.job("compare") as job:
        plans: list[int] = []
        plan = job.plan
        job.plan = lambda n, unit=None: (plans.append(n), plan(n, unit))  # type: ignore[method-assign]
        compare([f"{tiny_bert_dir}@avg", f"{tiny_bert_dir}@cls_before_pooler"],
                CompareSettings(resamples=100, layers=False), data_dir=small_data_dir,
                encoder_kwargs={"cache_dir": tmp_path / "cold-cache"})
    out, err = capsys.readouterr()
    assert out == ""
    for k, pooler in ((1, "avg"), (2, "cls_before_pooler")):
        # each distinct sentence once: the STS-B sentences, then the tasks' other sentences
        assert re.search(rf"^\[{k}/2 \S+@{pooler}\] the other sentences of STS12, .*STS14.* \([\d,]+ sentences\)  "
                         r"\[\d+% of [\d,]+ sentences, \d\d:\d\d elapsed, ETA", err, flags=re.MULTILINE), err
        assert f"[{k}/2 {tiny_bert_dir}@{pooler}] STS-B sentences (" in err
    assert "paired tests, bootstrap CIs, CKA, kNN overlap, movers" in err
    # a cold cache: the plan was the work, sentence for sentence, except that the second pooler of the same
    # weights came from the first one's forward passes (one forward for several poolers) and left the plan
    assert job.done == job.total == sum(plans) // 2 > 0


# ----------------------------------------------------------------------------------------- the commands
def test_eval_progress_goes_to_stderr_and_stdout_stays_json(run_cli, tiny_bert_dir, small_data_dir, shown_at_once):
    code, out, err = run_cli("eval", f"{tiny_bert_dir}@avg", "--tasks", "sts-b,sick-r", "--data-dir", small_data_dir,
                             "--resamples", "0", "--json", "-", "--no-cache")
    assert code == 0, err
    assert json.loads(out)["results"][0]["pooler"] == "avg"  # stdout holds the JSON alone
    assert re.search(r"^\[1/1 \S+@avg\] STS › STSBenchmark \(\d+ sentences\)  \[", err, flags=re.MULTILINE), err


@pytest.mark.parametrize("flag", ["--no-progress", "--quiet"])
def test_one_flag_silences_the_progress(run_cli, tiny_bert_dir, small_data_dir, shown_at_once, flag):
    code, _, err = run_cli("eval", tiny_bert_dir, "--tasks", "sts-b", "--data-dir", small_data_dir, "--resamples",
                           "0", "--no-cache", flag)
    assert code == 0, err
    assert "sentences)" not in err and "elapsed" not in err


def test_training_says_when_it_evaluates_and_prints_no_log_dicts(run_cli, tiny_trainer_bert, tiny_corpus,
                                                                 small_data_dir, tmp_path, shown_at_once):
    code, out, err = run_cli("train", "unsup", "--model", tiny_trainer_bert, "--train-file", tiny_corpus, "--out",
                             tmp_path / "run", "--data-dir", small_data_dir, "--batch-size", "8", "--max-steps", "2",
                             "--eval-steps", "1", "--json", "-")
    assert code == 0, err
    assert json.loads(out)["steps"] == 2  # stdout: the --json - record alone, no {'eval_loss': …} dicts
    assert "{'" not in err and "eval_stsb_spearman" not in err
    assert "evaluating STS-B dev at step 1 (" in err and "evaluating STS-B dev at step 2 (" in err
    lines = [line for line in err.splitlines() if line.startswith("step ")]
    assert [line.split(":")[0] for line in lines] == ["step 0/2", "step 1/2", "step 2/2"]
    assert all("STS-B dev" in line and "ℓ_align" in line and "ℓ_uniform" in line for line in lines)


def test_a_finished_job_says_so_and_a_failed_one_does_not():
    buf = io.StringIO()
    with progress.job("demo", file=buf, delay=0.0, tty=False) as job, job.stage("s", 10):
        job.plan(10, "sentences")
        job.advance(10, "sentences")
    assert re.fullmatch(r"demo: done, 10 sentences in \d\d:\d\d", buf.getvalue().splitlines()[-1])
    buf = io.StringIO()
    with pytest.raises(RuntimeError), progress.job("demo", file=buf, delay=0.0, tty=False) as job, job.stage("s"):
        raise RuntimeError("boom")
    assert "done" not in buf.getvalue() and progress.current() is None
