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


class NonFiniteEmbeddingError(InputError):
    """Vectors that are NaN/inf would have left the encoder. The message names the model, the first such
    sentence and the likely cause; ``index`` is that sentence's position in the list given to ``encode``
    (:meth:`at` rewords the message for a caller that knows where the list came from, e.g. a file's lines)."""

    def __init__(self, model: str, what: str, bad: int, total: int, index: int, text: str, cause: str,
                 where: str | None = None) -> None:
        self.model, self.what, self.bad, self.total = model, what, bad, total
        self.index, self.text, self.cause = index, text, cause
        where = where or f"sentence {index}"
        super().__init__(f"{model}: the {what} of {bad} of {total} sentences is NaN/inf (first: {where}, "
                         f"{text[:60]!r}); {cause}")

    def at(self, where: str) -> NonFiniteEmbeddingError:
        """The same error with the first sentence located as ``where`` (e.g. ``"line 12 of F"``)."""
        return NonFiniteEmbeddingError(self.model, self.what, self.bad, self.total, self.index, self.text,
                                       self.cause, where)


def warn(message: str) -> None:
    """One line ``warning: …`` on standard error: something was skipped or fell back, and the command goes on
    (drawn above the progress bars when a job shows them)."""
    from .progress import current

    job = current()
    if job is not None:
        job.write(f"warning: {message}")
    else:
        print(f"warning: {message}", file=sys.stderr, flush=True)
