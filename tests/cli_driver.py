"""``python tests/cli_driver.py ARGS`` runs ``simcse-analyze ARGS`` as a real process (also under ``torchrun``),
with test-only timing hooks set by environment variables, so that tests can make processes meet at an exact point
instead of hoping that they overlap:

* ``SIMCSE_TEST_GATE=DIR``: just before taking a directory lock, create ``DIR/ready-<pid>`` and wait for
  ``DIR/go`` (two processes started together then contend for the lock at the same instant);
* ``SIMCSE_TEST_HOLD=FILE``: just after taking it, wait until ``FILE`` exists (the holder keeps the lock while
  the test tries something else);
* ``SIMCSE_TEST_SLOW_RANK=R:S``: the process of rank ``R`` sleeps ``S`` seconds before starting (a slow rank
  under ``torchrun``).

Every wait gives up after 300 s.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 300
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"cli_driver: gave up waiting for {path}")
        time.sleep(0.01)


def _install_hooks() -> None:
    gate, hold = os.environ.get("SIMCSE_TEST_GATE"), os.environ.get("SIMCSE_TEST_HOLD")
    if gate or hold:
        from simcse_analysis.locks import DirectoryLock

        real_acquire = DirectoryLock.acquire

        def acquire(self):
            if gate:
                Path(gate, f"ready-{os.getpid()}").touch()
                _wait_for(Path(gate, "go"))
            got = real_acquire(self)
            if hold:
                _wait_for(Path(hold))
            return got

        DirectoryLock.acquire = acquire
    slow = os.environ.get("SIMCSE_TEST_SLOW_RANK")
    if slow:
        rank, seconds = slow.split(":")
        if os.environ.get("RANK", "0") == rank:
            time.sleep(float(seconds))


if __name__ == "__main__":
    _install_hooks()
    from simcse_analysis.cli import main

    main(sys.argv[1:])
