"""One validated reader for every JSON document the project reads back from disk.

A document (a report record, a comparison, a scores file, a store manifest, a run's ``run.json``, a
checkpoint's ``simcse_analysis.json``, …) is read by :func:`read_document` with the
:class:`DocumentKind` that describes it (the kinds themselves live in :mod:`simcse_analysis.records`):

1. the bytes are read and decoded as UTF-8 (a missing, unreadable or non-UTF-8 file is one error);
2. the JSON is parsed, and its nesting is bounded by :data:`MAX_DEPTH` (a document nested 100 000 deep
   is refused, not a ``RecursionError`` deep inside a renderer);
3. ``schema`` and ``version`` are checked (:func:`check_version`: a newer version says "upgrade", an
   unknown one says no release wrote it);
4. every field the readers use is checked against the kind's :class:`Spec` (types, finite numbers,
   ranges, file names that must stay inside their directory), and the kind's cross-field rules run.

Any failure is a :class:`SchemaError` (an :class:`~simcse_analysis.errors.InputError`, so the CLI prints one
line and exits 2) naming the file and the field as a path, e.g. ``models[2].sts_test.scores.STS12``, and
what to do. Documents are read before any expensive work starts, so a bad one costs nothing.

The specs are plain values built from a handful of node types::

    Obj({"n": Int(min=1), "sources": ListOf(Str())}, optional={"keys": FileName()})
    MapOf(Num(null=True))                       # an object with any keys, values numbers or null
    ListOf(Obj({...}), min_len=1)

A node only checks the fields it names (``Obj`` lets unknown keys through, so a newer writer's extra
fields do not break an older reader); :class:`Anything` stops the descent where the readers do not look.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError

#: Deepest nesting of objects/arrays a document may have (the deepest record written here has ~10 levels).
MAX_DEPTH = 64


# ----------------------------------------------------------------------------------------- errors
class SchemaError(InputError):
    """A JSON document is not a record of the expected kind (wrong or missing ``schema``, missing keys,
    wrong types); the message names the file and the field."""


class SchemaVersionError(SchemaError):
    """A record's ``version`` is one this release cannot read: newer than it (written by a later
    simcse-analysis) or not a version that ever existed.

    ``found``: the version in the file; ``readable``: the versions this release reads.
    """

    def __init__(self, message: str, *, found: Any, readable: tuple[int, ...]) -> None:
        super().__init__(message)
        self.found = found
        self.readable = readable


def check_version(doc: Any, schema: str, readable: tuple[int, ...], source: str, *, fix: str) -> int:
    """The ``version`` of ``doc`` if ``doc`` is a ``schema`` document of a readable version.

    :class:`SchemaError` when ``doc`` is not a ``schema`` document; :class:`SchemaVersionError` when its
    version is newer than this release reads (upgrade simcse-analysis) or unknown (``fix`` says how to
    rebuild it). ``source`` names the file in the message.
    """
    if not isinstance(doc, dict) or doc.get("schema") != schema:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        kind = schema.rsplit("/", 1)[-1].replace("-", " ")
        raise SchemaError(f"{source} is not a {kind} record (schema {found!r}, expected {schema!r}): {fix}")
    version = doc.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version in readable:
        return version
    newest = max(readable)
    if isinstance(version, int) and not isinstance(version, bool) and version > newest:
        msg = (f"{source} is a {schema} record of version {version}, written by a newer simcse-analysis; this "
               f"release reads versions {', '.join(map(str, readable))}: upgrade simcse-analysis, or {fix}")
    else:
        msg = (f"{source} has {schema} version {_show(version)}, which no simcse-analysis release wrote (this one "
               f"reads versions {', '.join(map(str, readable))}): {fix}")
    raise SchemaVersionError(msg, found=version, readable=readable)


# ----------------------------------------------------------------------------------------- field paths
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_+\-]*$")


def field_path(parts: Sequence[str | int]) -> str:
    """``("models", 2, "scores", "STS12")`` → ``models[2].scores.STS12`` (keys that are not plain names are
    quoted: ``tasks["a b"]``); the empty path is ``(document)``."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _IDENT.match(p):
            out += f".{p}" if out else p
        else:
            out += f"[{json.dumps(p, ensure_ascii=False)}]"
    return out or "(document)"


def _show(v: Any) -> str:
    """A short description of a JSON value for a message."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return repr(v if len(v) <= 40 else v[:37] + "...")
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # nan / inf / -inf: JSON's NaN and Infinity tokens
    if isinstance(v, (int, float)):
        return str(v) if len(str(v)) <= 24 else "a huge number"
    if isinstance(v, list):
        return f"a list of {len(v)}"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


class _Problem(Exception):
    """Raised inside a spec check; the reader turns it into a :class:`SchemaError` naming file and field."""

    def __init__(self, at: Sequence[str | int], message: str) -> None:
        super().__init__(message)
        self.at = tuple(at)
        self.message = message


# ----------------------------------------------------------------------------------------- spec nodes
class Spec:
    """A node of a document spec: :meth:`check` raises on the first problem under ``at``."""

    null: bool = False

    def describe(self) -> str:
        raise NotImplementedError

    def check(self, v: Any, at: tuple[str | int, ...]) -> None:
        if v is None and self.null:
            return
        self._check(v, at)

    def _check(self, v: Any, at: tuple[str | int, ...]) -> None:
        raise NotImplementedError

    def fail(self, v: Any, at: tuple[str | int, ...]) -> _Problem:
        return _Problem(at, f"must be {self.describe()}{' or null' if self.null else ''}, not {_show(v)}")


@dataclass(frozen=True)
class Anything(Spec):
    """Any JSON value (the readers do not look inside)."""

    null: bool = True

    def describe(self) -> str:
        return "any value"

    def _check(self, v: Any, at: tuple[str | int, ...]) -> None:
        return


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v: float) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


@dataclass(frozen=True)
class Num(Spec):
    """A finite number (``NaN``/``Infinity`` tokens refused) within ``[min, max]``."""

    null: bool = False
    min: float | None = None
    max: float | None = None

    def describe(self) -> str:
        return "a finite number" + (f" >= {self.min:g}" if self.min is not None else "") + (
            f" <= {self.max:g}" if self.max is not None else "")

    def _check(self, v: Any, at: tuple[str | int, ...]) -> None:
        if not _is_number(v) or not _finite(v):
            raise self.fail(v, at)
        if (self.min is not None and v < self.min) or (self.max is not None and v > self.max):
            raise self.fail(v, at)


@dataclass(frozen=True)
class Int(Spec):
    """An integer (not a float, not a boolean) within ``[min, max]``."""

    null: bool = False
    min: int | None = None
    max: int | None = None

    def describe(self) -> str:
        if self.min is not None and self.max is not None:
            return f"an integer from {self.min} to {self.max}"
        return "an integer" + (f" >= {self.min}" if self.min is not None else "") + (
            f" <= {self.max}" if self.max is not None else "")

    def _check(self, v: Any, at: tuple[str | int, ...]) -> None:
        if not isinstance(v, int) or isinstance(v, bool):
            raise self.fail(v, at)
        if (self.min is not None and v < self.min) or (self.max is not None and v > self.max):
            raise self.fail(v, at)


@dataclass(frozen=True)
class Str(Spec):
    """A string, optionally one of ``choices``."""

    null: bool = False
    choices: tuple[str, ...] | None = None

    def describe(self) -> str:
        return "a string" if self.choices is None else "one of " + ", ".join(map(repr, self.choices))

    def _check(self, v: Any, at: tuple[str | int, ...]) -> None:
        if not isinstance(v, str) or (self.choices is not None and v not in self.choices):
            raise self.fail(v, at)


@dataclass(frozen=True)
class FileName(Spec):
    """The name of a file inside the document's own directory: no directory part, no ``..``, not absolute
    (a hand-edited ``"../../etc/passwd"`` or ``"/tmp/x"`` would make a reader leave the directory)."""

    null: bool = False

    def describe(self) -> str:
        return "a plain file name inside the same directory (no '/', no '..')"

    def _check(self, v: Any, at: tuple[str | int, ...]) -> None:
        if not isinstance(v, str) or not is_plain_name(v):
            raise self.fail(v, at)


def is_plain_name(name: str) -> bool:
    """True for a file name with no directory part that is not ``.``/``..`` (nor empty, nor NUL-bearing)."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name \
        and not os.path.isabs(name)


@dataclass(frozen=True)
class Bool(Spec):
    null: bool = False

    def describe(self) -> str:
        return "true or false"

    def _check(self, v: Any, at: tuple[str | int, ...]) -> None:
        if not isinstance(v, bool):
            raise self.fail(v, at)


@dataclass(frozen=True)
class ListOf(Spec):
    """A list whose every item matches ``item`` (at least ``min_len`` items)."""

    item: Spec = field(default_factory=Anything)
    null: bool = False
    min_len: int = 0

    def describe(self) -> str:
        return "a list" + (f" of at least {self.min_len}" if self.min_len else "")

    def _check(self, v: Any, at: tuple[str | int, ...]) -> None:
        if not isinstance(v, list) or len(v) < self.min_len:
            raise self.fail(v, at)
        item = self.item
        plain = isinstance(item, Num) and not item.null and item.min is None and item.max is None
        if plain and all(type(x) is float or type(x) is int for x in v) and all(map(_finite, v)):
            return  # the common case (thousands of predictions), checked without a call per item
        for i, x in enumerate(v):
            item.check(x, (*at, i))


@dataclass(frozen=True)
class MapOf(Spec):
    """An object with any keys (at least ``min_len`` of them), each value matching ``value``."""

    value: Spec = field(default_factory=Anything)
    null: bool = False
    min_len: int = 0

    def describe(self) -> str:
        return "an object" + (f" with at least {self.min_len} entries" if self.min_len else "")

    def _check(self, v: Any, at: tuple[str | int, ...]) -> None:
        if not isinstance(v, dict) or len(v) < self.min_len:
            raise self.fail(v, at)
        for k, x in v.items():
            self.value.check(x, (*at, k))


#: A cross-field rule of an :class:`Obj`: ``None`` if the object is consistent, else ``(relative field path,
#: problem)``; it may also check a part against another spec (``spec.check(part, relative path)``).
Rule = Callable[[dict[str, Any]], "tuple[tuple[str | int, ...], str] | None"]


@dataclass(frozen=True)
class Obj(Spec):
    """An object with the ``required`` keys and, when present, the ``optional`` ones, each matching its
    spec; other keys pass unchecked. ``rules`` run after the fields check out: each returns ``None`` or
    ``(relative field path, problem)`` for a cross-field inconsistency (e.g. a count that disagrees)."""

    required: dict[str, Spec] = field(default_factory=dict)
    optional: dict[str, Spec] = field(default_factory=dict)
    null: bool = False
    rules: tuple[Rule, ...] = ()

    def describe(self) -> str:
        return "an object"

    def _check(self, v: Any, at: tuple[str | int, ...]) -> None:
        if not isinstance(v, dict):
            raise self.fail(v, at)
        for k, spec in self.required.items():
            if k not in v:
                raise _Problem((*at, k), "is missing")
            spec.check(v[k], (*at, k))
        for k, spec in self.optional.items():
            if k in v:
                spec.check(v[k], (*at, k))
        for rule in self.rules:
            try:
                problem = rule(v)
            except _Problem as p:
                raise _Problem((*at, *p.at), p.message) from None
            if problem is not None:
                raise _Problem((*at, *problem[0]), problem[1])


@dataclass(frozen=True)
class OneOf(Spec):
    """A value matching any of ``options`` (e.g. a string or a list of strings)."""

    options: tuple[Spec, ...] = ()
    null: bool = False

    def describe(self) -> str:
        return " or ".join(o.describe() for o in self.options)

    def _check(self, v: Any, at: tuple[str | int, ...]) -> None:
        for o in self.options:
            try:
                o.check(v, at)
                return
            except _Problem:
                continue
        raise self.fail(v, at)


# ----------------------------------------------------------------------------------------- kinds and reading
@dataclass(frozen=True)
class DocumentKind:
    """What a document of one kind must look like.

    ``what``: its name in messages ("scores file"); ``spec``: the whole document's spec; ``fix``: how to
    get a good one; ``schema`` / ``readable``: the ``schema`` value it must carry and the versions this
    release reads (``None``: a file without them, e.g. a checkpoint's metadata).
    """

    what: str
    spec: Spec
    fix: str
    schema: str | None = None
    readable: tuple[int, ...] = ()


@dataclass(frozen=True)
class Nested(Spec):
    """A whole document of another kind embedded in this one (e.g. a comparison kept in a report record):
    its ``schema``, ``version`` and spec are checked."""

    kind: DocumentKind | None = None
    null: bool = False

    def describe(self) -> str:
        return f"a {self.kind.what}" if self.kind else "a document"

    def _check(self, v: Any, at: tuple[str | int, ...]) -> None:
        kind = self.kind
        if kind is None:
            return
        if kind.schema is not None:
            if not isinstance(v, dict) or v.get("schema") != kind.schema:
                found = v.get("schema") if isinstance(v, dict) else None
                raise _Problem(at, f"is not a {kind.schema} document (schema {_show(found)})")
            version = v.get("version")
            if not isinstance(version, int) or isinstance(version, bool) or version not in kind.readable:
                raise _Problem((*at, "version"), f"is {_show(version)}, which this release cannot read (it reads "
                                                 f"{kind.schema} versions {', '.join(map(str, kind.readable))})")
        kind.spec.check(v, at)


def _depth_problem(doc: Any) -> str | None:
    """``None`` if ``doc`` nests at most :data:`MAX_DEPTH` containers deep (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        v, d = stack.pop()
        if d > MAX_DEPTH:
            return f"nests objects/lists more than {MAX_DEPTH} deep"
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values() if isinstance(x, (dict, list)))
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v if isinstance(x, (dict, list)))
    return None


def _loads(text: str, source: str, fix: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SchemaError(f"{source}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); {fix}") from None
    except RecursionError:  # deeper than the parser's own limit (~1000)
        raise SchemaError(f"{source}: nests objects/lists more than {MAX_DEPTH} deep, which no simcse-analysis "
                          f"document does; {fix}") from None


def _check_depth(doc: Any, source: str, fix: str) -> None:
    problem = _depth_problem(doc)
    if problem:
        raise SchemaError(f"{source}: {problem}, which no simcse-analysis document does; {fix}")


def parse_json(text: str, source: str, fix: str) -> Any:
    """The JSON value in ``text``, nesting bounded by :data:`MAX_DEPTH`; :class:`SchemaError` naming
    ``source`` (and the line and column of a syntax error) otherwise."""
    doc = _loads(text, source, fix)
    _check_depth(doc, source, fix)
    return doc


def read_text(path: str | os.PathLike[str], source: str, fix: str, what: str = "file") -> str:
    """The UTF-8 text of ``path`` (a leading BOM dropped); one :class:`InputError` naming ``source`` when it is
    missing, a directory, unreadable or not UTF-8."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{source}: no such file ({what}); {fix}") from None
    except IsADirectoryError:
        raise InputError(f"{source} is a directory, not a {what}; {fix}") from None
    except OSError as e:
        raise InputError(f"{source}: cannot read it ({e.strerror or e}); {fix}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{source}: not UTF-8 text (byte {e.start}); {fix}") from None


def validate_document(doc: Any, kind: DocumentKind, source: str) -> int | None:
    """Check an already-parsed ``doc`` against ``kind`` (schema, version, spec); returns its version (``None``
    for kinds without one). :class:`SchemaError` / :class:`SchemaVersionError` naming ``source`` and the field."""
    _check_depth(doc, source, kind.fix)
    version = None
    if kind.schema is not None:
        version = check_version(doc, kind.schema, kind.readable, source, fix=kind.fix)
    try:
        kind.spec.check(doc, ())
    except _Problem as p:
        where = field_path(p.at) if p.at else "the document"
        raise SchemaError(f"{source}: {where} {p.message}; {kind.fix}") from None
    return version


def read_document(path: str | os.PathLike[str], kind: DocumentKind, *, source: str | None = None
                  ) -> dict[str, Any]:
    """Read, parse and validate the ``kind`` document at ``path`` (see the module docstring).

    ``source`` names the file in messages (default: the path; e.g. ``"--from-json r.json"``). Returns the
    document (a dict) as parsed; any problem is one :class:`SchemaError` (an ``InputError``)."""
    source = source or str(path)
    doc = _loads(read_text(path, source, kind.fix, kind.what), source, kind.fix)  # depth: validate_document
    if kind.schema is None and not isinstance(doc, dict) and isinstance(kind.spec, (Obj, MapOf)):
        raise SchemaError(f"{source}: must hold a JSON object, not {_show(doc)}; {kind.fix}")
    validate_document(doc, kind, source)
    return doc


__all__ = ["MAX_DEPTH", "Anything", "Bool", "DocumentKind", "FileName", "Int", "ListOf", "MapOf", "Nested", "Num",
           "Obj", "OneOf", "SchemaError", "SchemaVersionError", "Spec", "Str", "check_version", "field_path",
           "is_plain_name", "parse_json", "read_document", "read_text", "validate_document"]
