"""User-facing errors.

Anything the user can fix (a bad path, an unknown pooler, a malformed data file) raises
:class:`InputError`. The CLI prints its message on one line and exits with code 2, without a
traceback; Python callers get an ordinary exception.
"""

from __future__ import annotations

import sys


class InputError(ValueError):
    """Bad input: the message names the file/argument at fault and how to fix it."""

    exit_code = 2


def warn(message: str) -> None:
    """One line ``warning: …`` on standard error: something was skipped or fell back, and the command goes on
    (drawn above the progress bars when a job shows them)."""
    from .progress import current

    job = current()
    if job is not None:
        job.write(f"warning: {message}")
    else:
        print(f"warning: {message}", file=sys.stderr, flush=True)
