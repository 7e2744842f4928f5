"""Fetch the evaluation and training data from their public URLs into the data-dir layout.

Sources (as used by SentEval's ``data/downstream/get_transfer_data.bash`` and the SimCSE repository's
``data/download_{wiki,nli}.sh`` and ``SentEval/data/downstream/download_dataset.sh``):

============== ================================================================ ========================
resource       URL                                                              goes to
============== ================================================================ ========================
sts12 … sts16  ``http://ixa2.si.ehu.es/stswiki/images/…/STS201x-en-test.zip``   ``sts/sts1x/raw/``
stsb           ``http://ixa2.si.ehu.es/stswiki/images/4/48/Stsbenchmark.tar.gz`` ``sts/stsb/``
sick_*         ``http://alt.qcri.org/semeval2014/task1/data/uploads/sick_*.zip`` ``sts/sick/``
senteval       SimCSE's ``senteval.tar`` (SentEval-processed copies)            ``sts/*/senteval/``
wiki1m         SimCSE's ``wiki1m_for_simcse.txt``                               ``unsup/``
nli            SimCSE's ``nli_for_simcse.csv``                                  ``nli/``
wordnet        Princeton's ``WNdb-3.0.tar.gz`` (``--positive synonym`` only)     ``wordnet/``
============== ================================================================ ========================

Checksums: the publishers give none, and they could not be computed here (no internet), so every
built-in ``sha256`` is ``None``: such a download is not verified, and its sha256 is reported so it can be
pinned. Pin checksums (or point at mirrors) with a manifest file::

    {"base_url": "https://mirror.example/simcse",          # optional, replaces each URL's directory
     "mirrors": ["https://backup.example/simcse"],         # optional, tried in order when a download fails
     "resources": {"stsb": {"sha256": "…", "url": "…"}}}  # per-resource overrides

Downloads go through pooch (``pooch.retrieve``): streamed into a temporary file, checked against the
pinned sha256, and only then moved into place; a connection error, a timeout or an HTTP 5xx is retried
(:data:`RETRIES` times, growing waits), then the next mirror is tried. On a checksum mismatch
(:class:`InputError`) or any failure the temporary file and the staging directory are removed, so no
partial file is ever left. Archives are extracted member by member through a whitelist of
``(member regex, destination)`` rules (no path from the archive is used as is), into a staging directory
that is moved into place only once every expected file is there.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.parse
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from .documents import parse_json, read_text
from .errors import InputError
from .io_utils import atomic_path
from .sts_data import SUBSETS

_STS_ZIPS = {
    "STS12": ("http://ixa2.si.ehu.es/stswiki/images/4/40/STS2012-en-test.zip", "test-gold"),
    "STS13": ("http://ixa2.si.ehu.es/stswiki/images/2/2f/STS2013-en-test.zip", "test-gs"),
    "STS14": ("http://ixa2.si.ehu.es/stswiki/images/8/8c/STS2014-en-test.zip", "sts-en-test-gs-2014"),
    "STS15": ("http://ixa2.si.ehu.es/stswiki/images/d/da/STS2015-en-test.zip", "test_evaluation_task2a"),
    "STS16": ("http://ixa2.si.ehu.es/stswiki/images/9/98/STS2016-en-test.zip",
              "sts2016-english-with-gs-v1.0"),
}
_SICK = "http://alt.qcri.org/semeval2014/task1/data/uploads"
_SIMCSE_HF = "https://huggingface.co/datasets/princeton-nlp/datasets-for-simcse/resolve/main"


@dataclass(frozen=True)
class Resource:
    """One downloadable file.

    ``kind``: ``zip``, ``tar`` (any compression) or ``file``. ``rules``: ``(regex, destination)`` pairs;
    an archive member whose ``/``-separated name matches ``regex`` (``re.search``) is written to
    ``destination`` (``match.expand`` syntax, relative to the data directory); for ``file`` the single
    rule's destination is used. ``expects``: relative paths that must exist after fetching (they also
    decide whether the resource is missing).
    """

    name: str
    url: str
    kind: str
    rules: tuple[tuple[str, str], ...]
    expects: tuple[str, ...]
    sha256: str | None = None
    description: str = ""
    mirrors: tuple[str, ...] = ()  # tried in order when ``url`` fails


def _sts_resource(task: str) -> Resource:
    url, subdir = _STS_ZIPS[task]
    n = task[-2:]
    prefix = "STS2016" if task == "STS16" else "STS"
    expects = tuple(f"sts/sts{n}/raw/{prefix}.{kind}.{s}.txt" for s in SUBSETS[task] for kind in ("input", "gs"))
    return Resource(task.lower(), url, "zip", ((rf"(?:^|/){re.escape(subdir)}/([^/]+)$", rf"sts/sts{n}/raw/\1"),),
                    expects, description=f"SemEval {task} English test set with gold scores (raw)")


def _sick_resource(split: str) -> Resource:
    return Resource(f"sick_{split}", f"{_SICK}/sick_{split}.zip", "zip",
                    ((r"(?:^|/)(SICK_[^/]+\.txt)$", r"sts/sick/\1"), (r"(?:^|/)(readme\.txt)$", r"sts/sick/\1")),
                    (f"sts/sick/SICK_{split}.txt",), description=f"SICK {split} (SemEval-2014 task 1, raw)")


_SENTEVAL_EXPECTS = tuple(
    f"sts/sts{t[-2:]}/senteval/STS.{kind}.{s}.txt" for t in SUBSETS for s in SUBSETS[t] for kind in ("input", "gs")
) + tuple(f"sts/stsb/senteval/sts-{s}.csv" for s in ("train", "dev", "test"))

RESOURCES: tuple[Resource, ...] = (
    *(_sts_resource(t) for t in SUBSETS),
    Resource("stsb", "http://ixa2.si.ehu.es/stswiki/images/4/48/Stsbenchmark.tar.gz", "tar",
             ((r"(?:^|/)stsbenchmark/([^/]+)$", r"sts/stsb/\1"),),
             tuple(f"sts/stsb/sts-{s}.csv" for s in ("train", "dev", "test")),
             description="STS Benchmark train/dev/test (raw)"),
    *(_sick_resource(s) for s in ("train", "trial", "test_annotated")),
    Resource("senteval", f"{_SIMCSE_HF}/senteval.tar", "tar",
             ((r"(?:^|/)STS/STS1([2-6])-en-test/(STS\.(?:input|gs)\.[^/]+\.txt)$", r"sts/sts1\1/senteval/\2"),
              (r"(?:^|/)STS/STSBenchmark/(sts-(?:train|dev|test)\.csv)$", r"sts/stsb/senteval/\1"),
              (r"(?:^|/)SICK/(SICK_(?:train|trial|test_annotated)\.txt)$", r"sts/sick/senteval/\1")),
             _SENTEVAL_EXPECTS, description="SentEval-processed STS12-16, STS-B and SICK (SimCSE's copy)"),
    Resource("wiki1m", f"{_SIMCSE_HF}/wiki1m_for_simcse.txt", "file",
             (("", "unsup/wiki1m_for_simcse.txt"),), ("unsup/wiki1m_for_simcse.txt",),
             description="10^6 English Wikipedia sentences (unsupervised SimCSE)"),
    Resource("nli", f"{_SIMCSE_HF}/nli_for_simcse.csv", "file",
             (("", "nli/nli_for_simcse.csv"),), ("nli/nli_for_simcse.csv",),
             description="SNLI+MNLI triplets sent0,sent1,hard_neg (supervised SimCSE)"),
    Resource("wordnet", "https://wordnetcode.princeton.edu/3.0/WNdb-3.0.tar.gz", "tar",
             ((r"(?:^|/)dict/((?:index|data)\.(?:noun|verb|adj|adv)|(?:noun|verb|adj|adv)\.exc)$", r"wordnet/\1"),),
             tuple(f"wordnet/{kind}.{pos}" for pos in ("noun", "verb", "adj", "adv") for kind in ("index", "data")),
             description="WordNet 3.0 database files (synonym-replacement positives)"),
)
RESOURCE_NAMES: tuple[str, ...] = tuple(r.name for r in RESOURCES)


# ------------------------------------------------------------------------------- manifest
def select_resources(names: str | Iterable[str] | None, resources: Sequence[Resource] = RESOURCES) -> list[Resource]:
    """Resources by name (comma-separated or iterable); ``None`` = all."""
    if names is None:
        return list(resources)
    items = [names] if isinstance(names, str) else list(names)
    wanted = [p.strip().lower() for item in items for p in str(item).split(",") if p.strip()]
    by_name = {r.name: r for r in resources}
    for w in wanted:
        if w not in by_name:
            raise InputError(f"unknown data resource {w!r}: choose from {', '.join(by_name)}")
    return [r for r in resources if r.name in wanted]


def _file_name(url: str) -> str:
    return PurePosixPath(urllib.parse.urlparse(url).path).name


def with_base_url(resources: Sequence[Resource], base_url: str) -> list[Resource]:
    """Replace each URL's directory by ``base_url``: ``base_url/<original file name>``."""
    base = base_url.rstrip("/")
    return [replace(r, url=f"{base}/{_file_name(r.url)}") for r in resources]


def with_mirrors(resources: Sequence[Resource], mirrors: Sequence[str]) -> list[Resource]:
    """Add fallbacks ``mirror/<file name>`` (in the given order) after each resource's URL."""
    bases = [m.rstrip("/") for m in mirrors]
    return [replace(r, mirrors=(*r.mirrors, *(f"{b}/{_file_name(r.url)}" for b in bases))) for r in resources]


def load_manifest(manifest: str | os.PathLike[str] | dict | None = None, base_url: str | None = None,
                  resources: Sequence[Resource] = RESOURCES) -> list[Resource]:
    """Built-in resources with a manifest's overrides (``url``, ``sha256``) and ``base_url`` applied.

    ``manifest`` is a JSON file path or the parsed dict; an explicit ``base_url`` wins over the
    manifest's; a per-resource ``url`` wins over both.
    """
    doc: dict = {}
    if isinstance(manifest, dict):
        doc = manifest
    elif manifest is not None:
        p = Path(manifest)
        if not p.exists():
            raise InputError(f"manifest {p} does not exist: pass an existing JSON file to --manifest")
        fix = "fix the file (a JSON object with a 'resources' mapping)"
        doc = parse_json(read_text(p, f"manifest {p}", fix), f"manifest {p}", fix)  # depth-bounded
        if not isinstance(doc, dict):
            raise InputError(f"manifest {p} must be a JSON object with a 'resources' mapping")
    out = list(resources)
    base = base_url or doc.get("base_url")
    if base:
        out = with_base_url(out, base)
    mirrors = doc.get("mirrors", []) or []
    if not isinstance(mirrors, list) or not all(isinstance(m, str) and m.strip() for m in mirrors):
        raise InputError("manifest 'mirrors' must be a list of base URLs, tried in order when a download fails")
    out = with_mirrors(out, mirrors)
    overrides = doc.get("resources", {}) or {}
    if not isinstance(overrides, dict):
        raise InputError("manifest 'resources' must map resource names to {'url': ..., 'sha256': ...}")
    by_name = {r.name: i for i, r in enumerate(out)}
    for name, fields in overrides.items():
        if name not in by_name:
            raise InputError(f"manifest names unknown resource {name!r}: choose from {', '.join(by_name)}")
        if not isinstance(fields, dict) or set(fields) - {"url", "sha256"}:
            raise InputError(f"manifest entry {name!r} may only set 'url' and 'sha256'")
        sha = fields.get("sha256", out[by_name[name]].sha256)
        if sha is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", str(sha)):
            raise InputError(f"manifest entry {name!r}: sha256 {sha!r} is not 64 hex digits")
        out[by_name[name]] = replace(out[by_name[name]], url=fields.get("url", out[by_name[name]].url),
                                     sha256=sha.lower() if sha else None)
    return out


def is_present(resource: Resource, data_dir: str | os.PathLike[str]) -> bool:
    """True when every file the resource provides exists under ``data_dir``."""
    return all((Path(data_dir) / rel).is_file() for rel in resource.expects)


def missing_resources(data_dir: str | os.PathLike[str], resources: Sequence[Resource] = RESOURCES) -> list[Resource]:
    """Resources with at least one expected file absent under ``data_dir``."""
    return [r for r in resources if not is_present(r, data_dir)]


# ------------------------------------------------------------------------------- download
#: Extra attempts after a connection error, a timeout or an HTTP 5xx (not after a 4xx or a checksum mismatch).
RETRIES = 2
#: Seconds to wait before retry k (1-based): ``BACKOFF_S * k``.
BACKOFF_S = 1.0


@contextlib.contextmanager
def _pooch_quiet() -> Iterator[None]:
    """pooch logs every download at INFO level to stderr; the caller reports instead."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _fetch_once(url: str, known_hash: str | None, staging: Path, *, progress: bool, timeout: float,
                retries: int, desc: str) -> Path:
    """One URL through ``pooch.retrieve`` (streamed to a temporary file, hash-checked, then moved), retried
    after transient failures. Raises ``ValueError`` (checksum) or a ``requests`` exception."""
    import pooch
    import requests
    from tqdm.auto import tqdm

    for attempt in range(retries + 1):
        try:
            # pooch sets the total from Content-Length (a bar with total None would not be truthy for it)
            bar = tqdm(total=1, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, file=sys.stderr,
                       leave=False) if progress else False
            with _pooch_quiet():
                return Path(pooch.retrieve(url, known_hash=known_hash, fname="download", path=staging,
                                           downloader=pooch.HTTPDownloader(progressbar=bar, chunk_size=1 << 20,
                                                                           timeout=timeout)))
        except requests.exceptions.HTTPError as e:
            status = e.response.status_code if e.response is not None else 0
            if status < 500 or attempt == retries:
                raise
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout):
            if attempt == retries:
                raise
        time.sleep(BACKOFF_S * (attempt + 1))
    raise AssertionError("unreachable")


def download(url: str, dest: str | os.PathLike[str], *, sha256: str | None = None, progress: bool = True,
             timeout: float = 60.0, desc: str | None = None, mirrors: Sequence[str] = (),
             retries: int = RETRIES) -> str:
    """Fetch ``url`` (else each of ``mirrors`` in turn) to ``dest`` atomically with pooch; return the sha256 (hex).

    Each URL is retried ``retries`` times after a connection error, a timeout or an HTTP 5xx. With ``sha256``
    given, a mismatch leaves nothing at ``dest``; when every URL fails, :class:`InputError` says why for each.
    """
    import requests

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    known = f"sha256:{sha256.lower()}" if sha256 else None
    failures: list[str] = []
    for source in [url, *mirrors]:
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=dest.parent))
        try:
            got = _fetch_once(source, known, staging, progress=progress, timeout=timeout, retries=retries,
                              desc=desc or dest.name)
            digest = _file_sha256(got)
            with atomic_path(dest) as tmp:  # same file system: a rename, with ordinary permissions
                os.replace(got, tmp)
            return digest
        except ValueError as e:  # pooch: "... does not match the known hash: expected X but got Y ..."
            m = re.search(r"but got (?:sha256:)?([0-9a-f]{64})", str(e))
            failures.append(f"checksum mismatch for {source}: expected sha256 {sha256.lower() if sha256 else '?'}, "
                            f"got {m.group(1) if m else 'another'}")
        except requests.exceptions.RequestException as e:
            failures.append(f"cannot download {source}: {_reason(e)}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if failures[-1].startswith("checksum mismatch"):
        fix = "nothing was kept: retry, or pin the new checksum with --manifest if the publisher changed the file"
    else:
        fix = "check the connection or pass --base-url pointing at a mirror"
    raise InputError("; ".join(failures) + f"; {fix}")


def _reason(e: Exception) -> str:
    response = getattr(e, "response", None)
    if response is not None:
        return f"HTTP {response.status_code} {response.reason or ''}".strip()
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _safe_rel(rel: str) -> str | None:
    """``rel`` if it is a plain relative path inside the data directory, else ``None``."""
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or any(part in ("", ".", "..") for part in p.parts):
        return None
    return str(p)


def _members(archive: Path, kind: str) -> Iterable[tuple[str, Callable[[], bytes]]]:
    """``(name, read_bytes)`` for each regular file of a zip or tar archive."""
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, (lambda i=info: zf.read(i))
    else:
        with tarfile.open(archive, "r:*") as tf:
            for m in tf:
                if m.isreg():
                    yield m.name, (lambda m=m: tf.extractfile(m).read())


def extract(resource: Resource, archive: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> list[str]:
    """Write the archive members matched by ``resource.rules`` under ``out_dir``; returns relative paths."""
    out, written = Path(out_dir), []
    try:
        for name, read in _members(Path(archive), resource.kind):
            name = name.replace("\\", "/").removeprefix("./")
            for pattern, template in resource.rules:
                m = re.search(pattern, name)
                if not m:
                    continue
                rel = _safe_rel(m.expand(template))
                if rel is not None and rel not in written:
                    target = out / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(read())
                    written.append(rel)
                break
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        raise InputError(f"{resource.name}: downloaded archive from {resource.url} cannot be read ({e}); "
                         "retry, or check the URL / --base-url") from e
    return written


@dataclass
class FetchReport:
    """What :func:`fetch_resource` did: ``verified`` is False when no checksum was known."""

    name: str
    url: str
    sha256: str
    verified: bool
    files: list[str] = field(default_factory=list)


def fetch_resource(resource: Resource, data_dir: str | os.PathLike[str], *, progress: bool = True,
                   timeout: float = 60.0) -> FetchReport:
    """Download ``resource`` (verifying its checksum when known) and place its files under ``data_dir``."""
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    if resource.kind == "file":
        dest = _safe_rel(resource.rules[0][1])
        assert dest is not None
        digest = download(resource.url, root / dest, sha256=resource.sha256, progress=progress, timeout=timeout,
                          desc=resource.name, mirrors=resource.mirrors)
        return FetchReport(resource.name, resource.url, digest, resource.sha256 is not None, [dest])
    staging = Path(tempfile.mkdtemp(prefix=f".download-{resource.name}-", dir=root))
    try:
        archive = staging / "archive"
        digest = download(resource.url, archive, sha256=resource.sha256, progress=progress, timeout=timeout,
                          desc=resource.name, mirrors=resource.mirrors)
        files = extract(resource, archive, staging / "files")
        lacking = [rel for rel in resource.expects if rel not in files]
        if lacking:
            raise InputError(f"{resource.name}: archive from {resource.url} lacks {lacking[0]}"
                             f"{f' and {len(lacking) - 1} more' if len(lacking) > 1 else ''}; "
                             "the URL may point at a different file: check it or --base-url")
        for rel in files:
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / "files" / rel, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return FetchReport(resource.name, resource.url, digest, resource.sha256 is not None, files)


def fetch_missing(data_dir: str | os.PathLike[str], resources: Sequence[Resource] = RESOURCES, *,
                  force: bool = False, progress: bool = True, timeout: float = 60.0) -> list[FetchReport]:
    """Fetch each resource that is missing under ``data_dir`` (all given ones with ``force``)."""
    todo = list(resources) if force else missing_resources(data_dir, resources)
    return [fetch_resource(r, data_dir, progress=progress, timeout=timeout) for r in todo]
