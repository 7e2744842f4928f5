"""Swept settings of a sweep and the command-line tokens that name their values.

:data:`GRID_KEYS` maps each setting a sweep can vary (``dropout``, ``temperature``, ``pooler``, …) to a
:class:`GridKey`: how a token from ``--grid`` / ``--rates`` is checked and made canonical (``crop:10%`` →
``crop:0.1``), how it is written into a :class:`~trainers.config.TrainConfig`, and how it is read back from
a finished run's stored settings. :func:`parse_grid`, :func:`parse_rates` and :func:`parse_seeds` turn the
command-line strings into those canonical tokens (:class:`InputError` for anything else).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from simcse_analysis.errors import InputError

from .config import TrainConfig, format_dropout, parse_dropout

#: The dropout rates of the paper's Table 3 (``fixed`` = both views share one 0.1 mask).
PAPER_RATES = "0,0.01,0.05,0.1,0.15,0.2,0.5,fixed"


@dataclass(frozen=True)
class GridKey:
    """A setting a sweep can vary: how to read a value from the command line (to a canonical token),
    write it into a :class:`TrainConfig`, and read it back from a run's stored settings."""

    name: str
    parse: Callable[[str], str]
    apply: Callable[[TrainConfig, str], TrainConfig]
    from_config: Callable[[dict[str, Any]], str]
    help: str


def _positive_number(kind: type, name: str) -> Callable[[str], str]:
    def parse(token: str) -> str:
        try:
            v = kind(token)
        except ValueError:
            raise InputError(f"{name} value {token!r} is not a{'n integer' if kind is int else ' number'}") from None
        if not v > 0:
            raise InputError(f"{name} value {token!r} must be > 0")
        return f"{v:g}" if kind is float else str(v)

    return parse


def _parse_rate(token: str) -> str:
    rate, fixed = parse_dropout(token)
    return format_dropout(rate, fixed)


def _apply_rate(c: TrainConfig, token: str) -> TrainConfig:
    rate, fixed = parse_dropout(token)
    return replace(c, dropout=rate, fixed_dropout_mask=fixed)


def _rate_of(cfg: dict[str, Any]) -> str:
    return format_dropout(cfg.get("dropout"), bool(cfg.get("fixed_dropout_mask"))) or "default"


def _parse_pooler(token: str) -> str:
    from simcse_analysis.pooling import check_pooler

    return check_pooler(token)


def _parse_positive(token: str) -> str:
    from .views import parse_positive, positive_name

    return positive_name(parse_positive(token)) or token.strip()  # canonical: crop:10% -> crop:0.1


def _parse_bool(token: str) -> str:
    text = token.strip().lower()
    if text in ("true", "yes", "1", "on"):
        return "true"
    if text in ("false", "no", "0", "off"):
        return "false"
    raise InputError(f"two_encoders value {token!r}: give true or false")


def _setter(field_name: str, kind: type) -> Callable[[TrainConfig, str], TrainConfig]:
    return lambda c, token: replace(c, **{field_name: kind(token)})


def _getter(field_name: str) -> Callable[[dict[str, Any]], str]:
    def get(cfg: dict[str, Any]) -> str:
        v = cfg.get(field_name)
        return "default" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))

    return get


GRID_KEYS: dict[str, GridKey] = {k.name: k for k in (
    GridKey("dropout", _parse_rate, _apply_rate, _rate_of, "a rate, 'fixed' or 'fixed:RATE'"),
    GridKey("temperature", _positive_number(float, "temperature"), _setter("temperature", float),
            _getter("temperature"), "softmax temperature, e.g. 0.05"),
    GridKey("pooler", _parse_pooler, _setter("pooler", str), _getter("pooler"), "cls, cls_before_pooler, avg, …"),
    GridKey("batch_size", _positive_number(int, "batch_size"), _setter("batch_size", int), _getter("batch_size"),
            "rows per step, e.g. 64"),
    GridKey("learning_rate", _positive_number(float, "learning_rate"), _setter("learning_rate", float),
            _getter("learning_rate"), "peak learning rate, e.g. 3e-5"),
    GridKey("max_length", _positive_number(int, "max_length"), _setter("max_length", int), _getter("max_length"),
            "training truncation, e.g. 32"),
    GridKey("positive", _parse_positive, _setter("positive", str), _getter("positive"),
            "dropout, crop:0.1, word_deletion:0.2, delete_one_word, next, next:3"),
    GridKey("two_encoders", _parse_bool, lambda c, token: replace(c, two_encoders=token == "true"),
            lambda cfg: "true" if cfg.get("two_encoders") else "false",
            "false (one encoder, SimCSE) or true (Table 2's two encoders)"),
)}
#: Other spellings accepted in ``--grid`` (command-line option names).
GRID_ALIASES = {"lr": "learning_rate", "batch-size": "batch_size", "max-length": "max_length"}


def grid_key(name: str) -> GridKey:
    key = GRID_ALIASES.get(name.strip(), name.strip().replace("-", "_"))
    if key not in GRID_KEYS:
        raise InputError(f"--grid {name!r}: unknown setting; choose one of {', '.join(GRID_KEYS)}")
    return GRID_KEYS[key]



def _split_list(spec: str) -> list[str]:
    return [t.strip() for t in str(spec).split(",") if t.strip()]


def parse_rates(spec: str) -> list[str]:
    """``"0,0.1,fixed"`` → canonical dropout tokens ``["0", "0.1", "fixed:0.1"]`` (order kept).

    Raises :class:`InputError` for an unknown token, a duplicate, or an empty list.
    """
    tokens = []
    for t in _split_list(spec):
        try:
            tokens.append(_parse_rate(t))
        except InputError:
            raise InputError(f"--rates: unknown rate {t!r}; give rates in [0, 1) and/or 'fixed' / 'fixed:RATE', "
                             f"e.g. --rates {PAPER_RATES}") from None
    return _unique(tokens, "--rates")


def _unique(tokens: list[str], option: str) -> list[str]:
    seen = set()
    for t in tokens:
        if t in seen:
            raise InputError(f"{option}: value {t!r} is listed twice")
        seen.add(t)
    if not tokens:
        raise InputError(f"{option} lists no values")
    return tokens


def parse_grid(specs: Sequence[str]) -> dict[str, list[str]]:
    """``["temperature=0.05,0.1", "pooler=cls,avg"]`` → ``{"temperature": [...], "pooler": [...]}`` with
    canonical tokens. Raises :class:`InputError` for an unknown key, a bad value, a key given twice, or a
    grid that expands to zero runs (no ``--grid``, or a key without values)."""
    grid: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, values = str(spec).partition("=")
        if not sep:
            raise InputError(f"--grid {spec!r}: write KEY=V1,V2,… (e.g. --grid temperature=0.05,0.1)")
        key = grid_key(name)
        if key.name in grid:
            raise InputError(f"--grid {key.name} is given twice: list all its values in one --grid")
        tokens = _split_list(values)
        if not tokens:
            raise InputError(f"--grid {spec!r} lists no values, so the grid expands to zero runs: give "
                             f"{key.name}=V1,V2,… ({key.help})")
        grid[key.name] = _unique([key.parse(t) for t in tokens], f"--grid {key.name}")
    if not grid:
        raise InputError("the grid expands to zero runs: give at least one --grid KEY=V1,V2,… (keys: "
                         f"{', '.join(GRID_KEYS)})")
    return grid


def parse_seeds(spec: str) -> list[int]:
    """``"1,2,3"`` → ``[1, 2, 3]``; :class:`InputError` for non-integers, duplicates or an empty list."""
    out = []
    for t in _split_list(spec):
        try:
            out.append(int(t))
        except ValueError:
            raise InputError(f"--seeds: {t!r} is not an integer (e.g. --seeds 1,2,3)") from None
    if len(set(out)) != len(out):
        raise InputError(f"--seeds {spec!r} lists a seed twice")
    if not out:
        raise InputError("--seeds lists no seeds (e.g. --seeds 1,2,3)")
    return out
