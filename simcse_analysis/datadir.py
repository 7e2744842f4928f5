"""Where the evaluation and training data live.

Resolution order: an explicit ``--data-dir``, else ``$SIMCSE_DATA``, else
``~/.cache/simcse-analysis/data`` (where ``simcse-analyze data --download`` puts the originals).
The layout under it mirrors the offline copy: ``sts/{sts12..sts16,stsb,sick}``, ``unsup/``, ``nli/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError

ENV_VAR = "SIMCSE_DATA"
DEFAULT_DATA_DIR = Path.home() / ".cache" / "simcse-analysis" / "data"


def default_data_dir() -> Path:
    """``$SIMCSE_DATA`` if set, else the per-user cache directory."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else DEFAULT_DATA_DIR


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None, *, must_exist: bool = True) -> Path:
    """Return the data directory to use, raising :class:`InputError` if it must exist and does not."""
    if data_dir is not None and str(data_dir) != "":
        path, origin = Path(data_dir).expanduser(), "--data-dir"
    elif os.environ.get(ENV_VAR):
        path, origin = default_data_dir(), f"${ENV_VAR}"
    else:
        path, origin = DEFAULT_DATA_DIR, "the default location"
    if must_exist and not path.is_dir():
        raise InputError(
            f"data directory {path} ({origin}) does not exist: pass --data-dir DIR or set {ENV_VAR}, "
            "or fetch the originals with `simcse-analyze data --download`"
        )
    return path
