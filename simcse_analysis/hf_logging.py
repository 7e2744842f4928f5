"""One context manager for silencing Hugging Face ``transformers`` while the library loads or saves models."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_transformers(*, warnings: bool = False, progress_bars: bool = False) -> Iterator[None]:
    """Inside the block ``transformers`` logs errors only (unless ``warnings``) and shows no progress bars
    (unless ``progress_bars``); the caller reports what matters itself (e.g. a missing pooler layer). The
    previous verbosity and progress-bar setting are restored on exit, also after an exception."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    if not warnings:
        hf_logging.set_verbosity_error()
    if not progress_bars:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
        else:
            hf_logging.disable_progress_bar()
