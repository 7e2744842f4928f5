"""Downloads against a local HTTP server on 127.0.0.1: checksums, atomicity, extraction into the layout."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import io
import json
import tarfile
import threading
import zipfile
from pathlib import Path
from typing import ClassVar

import pytest

from simcse_analysis.download import (
    RESOURCES,
    fetch_missing,
    fetch_resource,
    load_manifest,
    missing_resources,
    select_resources,
    with_base_url,
)
from simcse_analysis.errors import InputError
from simcse_analysis.sts_data import SUBSETS, load_sts


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@contextlib.contextmanager
def serving(root: Path, handler: type = _QuietHandler):
    """The base URL of a throw-away HTTP server on 127.0.0.1 serving ``root`` with ``handler``."""
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture()
def served(tmp_path):
    """``(directory, base_url)`` of a throw-away HTTP server on 127.0.0.1."""
    with serving(tmp_path / "www") as url:
        yield tmp_path / "www", url


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_sts12_zip(src: Path, out: Path, *, drop: str | None = None) -> Path:
    """STS2012-en-test.zip as released: ``test-gold/STS.{input,gs}.X.txt`` plus noise and a hostile member."""
    with zipfile.ZipFile(out, "w") as zf:
        for s in SUBSETS["STS12"]:
            for kind in ("input", "gs"):
                name = f"STS.{kind}.{s}.txt"
                if name != drop:
                    zf.writestr(f"test-gold/{name}", (src / "sts/sts12/raw" / name).read_bytes())
        zf.writestr("test-gold/00-readme.txt", "readme\n")
        zf.writestr("__MACOSX/test-gold/._STS.input.MSRpar.txt", "junk")
        zf.writestr("test-gold/../../escape.txt", "must not be written anywhere")
    return out


def make_stsb_tar(src: Path, out: Path) -> Path:
    """Stsbenchmark.tar.gz as released: ``stsbenchmark/sts-{train,dev,test}.csv``."""
    with tarfile.open(out, "w:gz") as tf:
        for split in ("train", "dev", "test"):
            data = (src / f"sts/stsb/sts-{split}.csv").read_bytes()
            info = tarfile.TarInfo(f"./stsbenchmark/sts-{split}.csv")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_archives_are_verified_and_extracted_into_the_layout(served, small_data_dir, tmp_path):
    www, url = served
    sums = {"sts12": sha256(make_sts12_zip(small_data_dir, www / "STS2012-en-test.zip")),
            "stsb": sha256(make_stsb_tar(small_data_dir, www / "Stsbenchmark.tar.gz"))}
    resources = select_resources("sts12,stsb", load_manifest(
        {"resources": {k: {"sha256": v} for k, v in sums.items()}}, base_url=url))
    dest = tmp_path / "data"
    reports = fetch_missing(dest, resources, progress=False)
    assert [(r.name, r.sha256, r.verified) for r in reports] == [("sts12", sums["sts12"], True),
                                                                ("stsb", sums["stsb"], True)]
    for rel in ["sts/sts12/raw/STS.input.MSRvid.txt", "sts/sts12/raw/STS.gs.MSRvid.txt", "sts/stsb/sts-dev.csv"]:
        assert (dest / rel).read_bytes() == (small_data_dir / rel).read_bytes()
    assert (dest / "sts/sts12/raw/00-readme.txt").read_text() == "readme\n"
    assert not any("escape" in p.name or "MACOSX" in str(p) for p in files_under(tmp_path))
    assert [p for p in dest.iterdir() if p.name.startswith(".")] == []  # staging removed
    for task, split in [("STS12", "test"), ("STSBenchmark", "train")]:
        got = load_sts(task, dest, split, "raw")
        want = load_sts(task, small_data_dir, split, "raw")
        assert [len(s) for s in got] == [len(s) for s in want]
    assert fetch_missing(dest, resources, progress=False) == []  # nothing missing any more


def test_checksum_mismatch_leaves_no_file(served, small_data_dir, tmp_path):
    www, url = served
    make_sts12_zip(small_data_dir, www / "STS2012-en-test.zip")
    (www / "wiki1m_for_simcse.txt").write_text("a sentence\nanother one\n", encoding="utf-8")
    wrong = "0" * 64
    resources = select_resources("sts12,wiki1m", load_manifest(
        {"resources": {"sts12": {"sha256": wrong}, "wiki1m": {"sha256": wrong}}}, base_url=url))
    dest = tmp_path / "data"
    for r in resources:
        with pytest.raises(InputError, match=f"checksum mismatch for {url}/.*expected sha256 {wrong}"):
            fetch_resource(r, dest, progress=False)
    assert files_under(dest) == []


def test_plain_file_with_known_checksum_lands_at_its_place(served, tmp_path):
    www, url = served
    body = "first sentence\nsecond sentence\n"
    (www / "wiki1m_for_simcse.txt").write_text(body, encoding="utf-8")
    digest = hashlib.sha256(body.encode()).hexdigest()
    [res] = select_resources("wiki1m", load_manifest({"resources": {"wiki1m": {"sha256": digest.upper()}}},
                                                     base_url=url))
    report = fetch_resource(res, tmp_path / "data", progress=False)
    assert report.verified and report.sha256 == digest
    assert (tmp_path / "data/unsup/wiki1m_for_simcse.txt").read_text(encoding="utf-8") == body


def test_unknown_checksum_downloads_unverified_and_reports_the_digest(served, small_data_dir, tmp_path):
    www, url = served
    digest = sha256(make_stsb_tar(small_data_dir, www / "Stsbenchmark.tar.gz"))
    [res] = select_resources("stsb", load_manifest(None, base_url=url))
    assert res.sha256 is None
    report = fetch_resource(res, tmp_path / "data", progress=False)
    assert (report.verified, report.sha256) == (False, digest)


def test_archive_lacking_expected_files_is_rejected_without_partial_files(served, small_data_dir, tmp_path):
    www, url = served
    make_sts12_zip(small_data_dir, www / "STS2012-en-test.zip", drop="STS.gs.MSRvid.txt")
    [res] = select_resources("sts12", load_manifest(None, base_url=url))
    with pytest.raises(InputError, match=r"lacks sts/sts12/raw/STS\.gs\.MSRvid\.txt"):
        fetch_resource(res, tmp_path / "data", progress=False)
    assert files_under(tmp_path / "data") == []


def test_http_error_is_an_input_error(served, tmp_path):
    _, url = served
    [res] = select_resources("nli", load_manifest(None, base_url=url))
    with pytest.raises(InputError, match="cannot download .*nli_for_simcse.csv"):
        fetch_resource(res, tmp_path / "data", progress=False)
    assert files_under(tmp_path / "data") == []


def test_base_url_keeps_each_file_name():
    moved = {r.name: r.url for r in with_base_url(RESOURCES, "http://mirror/x/")}
    assert moved["sts16"] == "http://mirror/x/STS2016-en-test.zip"
    assert moved["stsb"] == "http://mirror/x/Stsbenchmark.tar.gz"
    assert moved["sick_trial"] == "http://mirror/x/sick_trial.zip"


def test_builtin_checksums_are_unknown_rather_than_invented():
    assert all(r.sha256 is None for r in RESOURCES)


@pytest.mark.parametrize(("manifest", "message"), [
    ({"resources": {"sts99": {"sha256": None}}}, "unknown resource 'sts99'"),
    ({"resources": {"stsb": {"sha256": "abc"}}}, "not 64 hex digits"),
    ({"resources": {"stsb": {"md5": "abc"}}}, "may only set"),
])
def test_bad_manifest_is_an_input_error(manifest, message):
    with pytest.raises(InputError, match=message):
        load_manifest(manifest)


def test_offline_copy_lacks_only_the_full_training_corpora_and_wordnet(data_dir):
    assert [r.name for r in missing_resources(data_dir)] == ["wiki1m", "nli", "wordnet"]


def test_wordnet_archive_lands_where_synonym_replacement_finds_it(served, tmp_path, monkeypatch):
    from test_synonyms import MINI, write_mini_wordnet

    from trainers.synonyms import find_wordnet_dir, load_wordnet

    www, url = served
    src = write_mini_wordnet(tmp_path / "src")
    with tarfile.open(www / "WNdb-3.0.tar.gz", "w:gz") as tf:  # the release's layout: dict/…
        for f in sorted(src.iterdir()):
            tf.add(f, arcname=f"dict/{f.name}")
        tf.add(src / "index.noun", arcname="dict/lexnames")  # not needed: not extracted
    resources = select_resources("wordnet", load_manifest(None, base_url=url))
    dest = tmp_path / "data"
    [report] = fetch_missing(dest, resources, progress=False)
    assert report.name == "wordnet" and not report.verified
    assert sorted(p.name for p in (dest / "wordnet").iterdir()) == sorted(MINI)
    monkeypatch.delenv("WORDNET_DIR", raising=False)
    monkeypatch.setenv("SIMCSE_DATA", str(dest))
    assert find_wordnet_dir() == dest / "wordnet"
    assert load_wordnet().synonyms("cars") == ["auto", "automobile", "railcar"]


# ------------------------------------------------------------------------------- CLI
def test_data_download_command_fetches_verifies_and_reports(served, small_data_dir, tmp_path, run_cli):
    www, url = served
    digest = sha256(make_stsb_tar(small_data_dir, www / "Stsbenchmark.tar.gz"))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"base_url": url, "resources": {"stsb": {"sha256": digest}}}))
    dest = tmp_path / "data"
    code, out, err = run_cli("data", "--download", "--only", "stsb", "--manifest", manifest,
                             "--data-dir", dest, "--no-progress")
    assert code == 0, err
    assert f"fetched stsb: 3 file(s), sha256 {digest} (verified)" in out
    rows = {tuple(line.split()[:4]) for line in out.splitlines()}
    assert ("STSBenchmark", "raw", "dev", "40") in rows
    assert ("STSBenchmark", "senteval", "dev", "-") in rows  # SentEval copy not fetched


def test_data_download_command_with_bad_checksum_exits_2_and_keeps_nothing(served, small_data_dir, tmp_path,
                                                                          run_cli):
    www, url = served
    make_stsb_tar(small_data_dir, www / "Stsbenchmark.tar.gz")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"resources": {"stsb": {"sha256": "1" * 64}}}))
    dest = tmp_path / "data"
    code, _, err = run_cli("data", "--download", "--only", "stsb", "--base-url", url, "--manifest", manifest,
                             "--data-dir", dest, "--no-progress")
    assert code == 2
    assert err.startswith("error: checksum mismatch") and err.strip().count("\n") == 0
    assert files_under(dest) == []


# ------------------------------------------------------------------------------- pooch: retries and mirrors
class _FlakyHandler(_QuietHandler):
    """Answers 503 to the first ``failures`` requests of each path, then serves the file; counts requests."""

    failures = 1
    seen: ClassVar[dict[str, int]] = {}

    def do_GET(self):
        n = self.seen[self.path] = self.seen.get(self.path, 0) + 1
        if n <= self.failures:
            self.send_error(503, "busy")
            return
        super().do_GET()


@pytest.fixture()
def flaky(tmp_path, monkeypatch):
    import simcse_analysis.download as dl

    monkeypatch.setattr(dl, "BACKOFF_S", 0.01)
    _FlakyHandler.seen = {}
    with serving(tmp_path / "flaky", _FlakyHandler) as url:
        yield tmp_path / "flaky", url


def test_a_transient_server_error_is_retried(flaky, tmp_path):
    www, url = flaky
    body = "one\ntwo\n"
    (www / "wiki1m_for_simcse.txt").write_text(body)
    digest = hashlib.sha256(body.encode()).hexdigest()
    [res] = select_resources("wiki1m", load_manifest({"resources": {"wiki1m": {"sha256": digest}}}, base_url=url))
    report = fetch_resource(res, tmp_path / "data", progress=False)
    assert report.verified and (tmp_path / "data/unsup/wiki1m_for_simcse.txt").read_text() == body
    assert _FlakyHandler.seen == {"/wiki1m_for_simcse.txt": 2}  # one 503, one retry


def test_retries_are_bounded_and_the_error_names_the_status(flaky, tmp_path):
    from simcse_analysis.download import RETRIES

    www, url = flaky
    (www / "wiki1m_for_simcse.txt").write_text("x\n")
    _FlakyHandler.failures = 99
    try:
        [res] = select_resources("wiki1m", load_manifest(None, base_url=url))
        with pytest.raises(InputError, match=r"cannot download .*wiki1m_for_simcse.txt: HTTP 503"):
            fetch_resource(res, tmp_path / "data", progress=False)
    finally:
        _FlakyHandler.failures = 1
    assert _FlakyHandler.seen == {"/wiki1m_for_simcse.txt": 1 + RETRIES}
    assert files_under(tmp_path / "data") == []


def test_a_failing_source_falls_back_to_the_mirrors_in_order(served, small_data_dir, tmp_path):
    www, url = served
    (www / "good").mkdir()
    digest = sha256(make_stsb_tar(small_data_dir, www / "good" / "Stsbenchmark.tar.gz"))
    (www / "corrupt").mkdir()
    (www / "corrupt" / "Stsbenchmark.tar.gz").write_bytes(b"not the archive")
    manifest = {"base_url": f"{url}/missing", "mirrors": [f"{url}/corrupt", f"{url}/good/"],
                "resources": {"stsb": {"sha256": digest}}}
    [res] = select_resources("stsb", load_manifest(manifest))
    assert res.mirrors == (f"{url}/corrupt/Stsbenchmark.tar.gz", f"{url}/good/Stsbenchmark.tar.gz")
    report = fetch_resource(res, tmp_path / "data", progress=False)
    assert report.verified and report.sha256 == digest
    assert (tmp_path / "data/sts/stsb/sts-dev.csv").read_bytes() == (small_data_dir / "sts/stsb/sts-dev.csv").read_bytes()


def test_when_every_source_fails_each_failure_is_named(served, tmp_path):
    www, url = served
    (www / "corrupt").mkdir()
    (www / "corrupt" / "nli_for_simcse.csv").write_text("a,b,c\n")
    manifest = {"base_url": f"{url}/missing", "mirrors": [f"{url}/corrupt"],
                "resources": {"nli": {"sha256": "2" * 64}}}
    [res] = select_resources("nli", load_manifest(manifest))
    with pytest.raises(InputError) as e:
        fetch_resource(res, tmp_path / "data", progress=False)
    msg = str(e.value)
    assert f"cannot download {url}/missing/nli_for_simcse.csv: HTTP 404" in msg
    assert f"checksum mismatch for {url}/corrupt/nli_for_simcse.csv: expected sha256 {'2' * 64}" in msg
    assert files_under(tmp_path / "data") == []


def test_bad_mirrors_in_a_manifest_are_an_input_error():
    with pytest.raises(InputError, match="'mirrors' must be a list of base URLs"):
        load_manifest({"mirrors": "http://one"})
