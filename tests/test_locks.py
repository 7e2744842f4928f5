"""One writer per store and per training run (issue 22): an exclusive lock (``filelock``) taken before the first
write and released on exit, however the holder exits; a second process is refused at once with one error line
naming the holder's pid. Tested with real processes that contend for the lock at the same instant
(``tests/cli_driver.py`` holds both at a gate just before the lock, then opens it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from simcse_analysis.locks import DirectoryInUseError, DirectoryLock, check_not_in_use, holder_file, lock_file

DRIVER = str(Path(__file__).with_name("cli_driver.py"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}

HOLD_SCRIPT = """
import sys, time
from simcse_analysis.locks import DirectoryLock
lock = DirectoryLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(600)
"""


def _wait(predicate, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def _start(args: list, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, DRIVER, *map(str, args)], env={**ENV, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True)


def _finish(procs: list[subprocess.Popen], timeout: float = 600) -> list[tuple[int, str, str]]:
    results = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            pytest.fail("a process did not finish")
        results.append((p.returncode, out, err))
    return results


def _race(gate: Path, procs: list[subprocess.Popen]) -> None:
    """Let processes that wait at the gate (tests/cli_driver.py) contend for the lock at the same instant."""
    _wait(lambda: len(list(gate.glob("ready-*"))) == len(procs) or any(p.poll() is not None for p in procs),
          "both processes to reach the lock")
    assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
    (gate / "go").touch()


def _error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("error: ")]


# ------------------------------------------------------------------ the lock itself
def test_a_held_directory_is_refused_naming_the_holder_and_free_again_once_it_is_killed(tmp_path):
    d = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, str(d)], env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DirectoryInUseError, match=rf"--out {d} is in use by another process \(pid {holder.pid} "):
            DirectoryLock(d).acquire()
        with pytest.raises(DirectoryInUseError, match=f"pid {holder.pid}"):
            check_not_in_use(d)  # the early probe says the same, creating nothing
        assert not d.exists()  # a lock never creates the directory it guards
    finally:
        holder.kill()  # SIGKILL: no clean-up ran, the kernel drops the lock
        holder.wait()
    with DirectoryLock(d) as lock:  # not stale: free at once
        assert lock.held and json.loads(holder_file(d).read_text())["pid"] == os.getpid()
    assert lock_file(d).is_file() and not holder_file(d).exists()


LATE_RECORD_SCRIPT = """
import json, os, socket, sys, time
from filelock import FileLock
from simcse_analysis.locks import holder_file, lock_file
lock = FileLock(str(lock_file(sys.argv[1])), timeout=0)
lock.acquire()
print("locked", flush=True)
time.sleep(1.5)  # a loaded machine: the record comes well after the lock
holder_file(sys.argv[1]).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": 0,
                                                "command": "late"}))
time.sleep(600)
"""


def test_a_holder_that_writes_its_record_late_is_still_named(tmp_path):
    """The refused process waits for the record while the lock is held (the CI of wave 3 once said "pid unknown"
    when the record came after a fixed second of retries)."""
    d = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", LATE_RECORD_SCRIPT, str(d)], env=ENV, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DirectoryInUseError, match=rf"\(pid {holder.pid} on .*: late\)"):
            DirectoryLock(d).acquire()
    finally:
        holder.kill()
        holder.wait()


def test_every_path_to_one_directory_meets_the_same_lock(tmp_path):
    real = tmp_path / "store"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    with DirectoryLock(real), pytest.raises(DirectoryInUseError):
        DirectoryLock(tmp_path / "alias" / ".." / "store").acquire()


def test_the_lock_is_released_on_an_error_and_on_ctrl_c(run_cli, tmp_path, tiny_bert_dir, monkeypatch):
    with pytest.raises(RuntimeError), DirectoryLock(tmp_path / "a"):
        raise RuntimeError("boom")
    DirectoryLock(tmp_path / "a").acquire().release()

    from simcse_analysis.encoder import Encoder

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Encoder, "encode", interrupted)
    sentences = tmp_path / "s.txt"
    sentences.write_text("one\ntwo\n")
    code, _, err = run_cli("encode", tiny_bert_dir, "--sentences", sentences, "--out", tmp_path / "st", "--no-cache")
    assert code == 130 and "aborted" in err
    DirectoryLock(tmp_path / "st").acquire().release()


# ------------------------------------------------------------------ two real processes started together
def test_two_encoders_into_one_new_store_one_is_refused_and_no_vector_is_mixed(tmp_path, tiny_bert_dir):
    """Two encoders of different sentence files into one new store, contending at the same instant: one writes
    the store, the other is refused naming its pid; the store is exactly the winner's (before the lock, the two
    interleaved their shards and keys)."""
    from simcse_analysis.encoder import load_encoder
    from simcse_analysis.store import encode_to_store, open_store

    texts = {}
    for name in ("a", "b"):
        texts[name] = tmp_path / f"{name}.txt"
        texts[name].write_text("".join(f"sentence {i} of file {name}\n" for i in range(24)))
    store, gate, hold = tmp_path / "store", tmp_path / "gate", tmp_path / "release"
    gate.mkdir()
    procs = {name: _start(["encode", tiny_bert_dir, "--sentences", f, "--out", store, "--shard-rows", "4",
                           "--no-cache"], SIMCSE_TEST_GATE=str(gate), SIMCSE_TEST_HOLD=str(hold))
             for name, f in texts.items()}
    _race(gate, list(procs.values()))
    # the winner keeps the lock until the loser has exited (a winner that finished first would leave no pid to name)
    _wait(lambda: any(p.poll() is not None for p in procs.values()), "one to be refused")
    hold.touch()
    results = dict(zip(procs, _finish(list(procs.values()))))
    codes = sorted(code for code, _, _ in results.values())
    assert codes == [0, 2], results
    winner = next(n for n, (code, _, _) in results.items() if code == 0)
    loser = "b" if winner == "a" else "a"
    lines = _error_lines(results[loser][2])
    assert len(lines) == 1 and f"--out {store} is in use by another process (pid {procs[winner].pid} " in lines[0]
    got = open_store(store)
    assert got.manifest.sources == [f"{winner}.txt"]
    encode_to_store(load_encoder(str(tiny_bert_dir), use_cache=False), [texts[winner]], tmp_path / "ref",
                    shard_rows=4, progress=False)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(open_store(tmp_path / "ref")))


def test_two_trainings_into_one_out_one_is_refused_and_resuming_the_live_run_too(run_cli, tmp_path,
                                                                                  tiny_trainer_bert, tiny_corpus,
                                                                                  small_data_dir):
    """Two trainings into one --out contend at the same instant: one trains, the other is refused naming its pid;
    while the winner holds the run, `--resume` of it is refused before any model loads; the trajectory is the
    winner's alone (one entry per evaluation, in order) and the run finishes."""
    out, gate, hold = tmp_path / "run", tmp_path / "gate", tmp_path / "release"
    gate.mkdir()
    args = ["train", "unsup", "--model", tiny_trainer_bert, "--train-file", tiny_corpus, "--out", out,
            "--batch-size", "8", "--max-steps", "3", "--eval-steps", "1", "--quiet", "--data-dir", small_data_dir]
    procs = [_start(args, SIMCSE_TEST_GATE=str(gate), SIMCSE_TEST_HOLD=str(hold)),
             _start([*args, "--seed", "7"], SIMCSE_TEST_GATE=str(gate), SIMCSE_TEST_HOLD=str(hold))]
    _race(gate, procs)
    _wait(lambda: holder_file(out).is_file() and any(p.poll() is not None for p in procs), "one to be refused")
    loser = next(p for p in procs if p.poll() is not None)
    winner = next(p for p in procs if p is not loser)
    code, _, err = _finish([loser])[0]
    lines = _error_lines(err)
    assert code == 2 and len(lines) == 1 and f"is in use by another process (pid {winner.pid} " in lines[0], err

    code, _, err = run_cli(*args, "--resume")  # the winner still holds the run
    assert code == 2 and f"--out {out} is in use by another process (pid {winner.pid} " in err, err

    hold.touch()
    code, _, err = _finish([winner])[0]
    assert code == 0, err
    steps = [json.loads(line)["step"] for line in (out / "trajectory.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3]
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
