"""The COCO downloader, against a loopback HTTP server that understands Range requests."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from minimrcnn.data import DataError, download
from minimrcnn.data.coco import CocoInstances
from minimrcnn.data.shapes import ensure_shapes


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _FileServer

    def do_GET(self) -> None:
        srv = self.server
        data = srv.files.get(self.path)
        range_header = self.headers.get("Range")
        if data is None:
            srv.log.append((self.path, range_header, 0))
            self.send_error(404)
            return
        start = 0
        if range_header and not srv.ignore_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                srv.log.append((self.path, range_header, 0))
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.cut_after is not None:  # simulate a dropped connection: announce everything, send a part
            body, srv.cut_after = body[: srv.cut_after], None
        srv.log.append((self.path, range_header, len(body)))
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass


class _FileServer(http.server.ThreadingHTTPServer):
    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)  # port 0: any free port
        self.files = files
        self.log: list[tuple[str, str | None, int]] = []  # (path, Range header, body bytes sent)
        self.cut_after: int | None = None
        self.ignore_range = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server() -> Iterator[_FileServer]:
    srv = _FileServer({"/blob.bin": os.urandom(300_000)})
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# ---------------------------------------------------------------------------------------------- fetch
def test_full_download_verified_and_extracted(server, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("val2017/000001.jpg", b"fake jpeg")
        zf.writestr("annotations/instances_val2017.json", b"{}")
    data = buffer.getvalue()
    server.files["/zips/val2017.zip"] = data
    dest = download.fetch(f"{server.url}/zips/val2017.zip", tmp_path / "val2017.zip", len(data), _md5(data),
                          timeout=5, progress=False)
    assert dest.read_bytes() == data and not (tmp_path / "val2017.zip.part").exists()
    assert server.log == [("/zips/val2017.zip", None, len(data))]
    download.extract(dest, tmp_path, progress=False)
    assert (tmp_path / "val2017" / "000001.jpg").read_bytes() == b"fake jpeg"
    assert (tmp_path / "annotations" / "instances_val2017.json").read_text() == "{}"
    (tmp_path / "val2017" / "000001.jpg").unlink()
    download.extract(dest, tmp_path, progress=False)  # done once: the marker file skips it
    assert not (tmp_path / "val2017" / "000001.jpg").exists()
    download.fetch(f"{server.url}/zips/val2017.zip", dest, len(data), _md5(data), timeout=5, progress=False)
    assert len(server.log) == 1  # already there: not requested again


def test_resume_requests_only_the_remainder(server, tmp_path):
    data = server.files["/blob.bin"]
    part = tmp_path / "blob.bin.part"
    part.write_bytes(data[:100_000])
    dest = download.fetch(f"{server.url}/blob.bin", tmp_path / "blob.bin", len(data), _md5(data),
                          timeout=5, progress=False)
    assert dest.read_bytes() == data
    assert server.log == [("/blob.bin", "bytes=100000-", 200_000)]


def test_dropped_connection_then_resume(server, tmp_path):
    data = server.files["/blob.bin"]
    server.cut_after = 120_000
    url, dest = f"{server.url}/blob.bin", tmp_path / "blob.bin"
    with pytest.raises(DataError, match=r"/blob\.bin: download interrupted at 120000 of 300000 bytes"):
        download.fetch(url, dest, len(data), _md5(data), timeout=5, progress=False)
    assert (tmp_path / "blob.bin.part").stat().st_size == 120_000
    download.fetch(url, dest, len(data), _md5(data), timeout=5, progress=False)
    assert (tmp_path / "blob.bin").read_bytes() == data
    assert server.log[-1] == ("/blob.bin", "bytes=120000-", 180_000)


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    data = server.files["/blob.bin"]
    server.ignore_range = True
    (tmp_path / "blob.bin.part").write_bytes(data[:5000])
    dest = download.fetch(f"{server.url}/blob.bin", tmp_path / "blob.bin", len(data), None, timeout=5,
                          progress=False)
    assert dest.read_bytes() == data


def test_complete_part_file_is_only_verified(server, tmp_path, capsys):
    data = server.files["/blob.bin"]
    (tmp_path / "blob.bin.part").write_bytes(data)
    download.fetch(f"{server.url}/blob.bin", tmp_path / "blob.bin", None, None, timeout=5, progress=False)
    assert server.log == [("/blob.bin", "bytes=300000-", 0)]  # the server answers 416: nothing left
    assert f"md5 {_md5(data)}" in capsys.readouterr().out  # no known checksum: the computed one is shown


def test_checksum_mismatch(server, tmp_path):
    data = server.files["/blob.bin"]
    with pytest.raises(DataError, match=r"blob\.bin: MD5 mismatch \(expected 0{32}, got [0-9a-f]{32}\)"):
        download.fetch(f"{server.url}/blob.bin", tmp_path / "blob.bin", len(data), "0" * 32, timeout=5,
                       progress=False)
    assert not (tmp_path / "blob.bin").exists() and not (tmp_path / "blob.bin.part").exists()


def test_size_mismatch_and_http_errors(server, tmp_path):
    data = server.files["/blob.bin"]
    with pytest.raises(DataError, match=f"server reports {len(data)} bytes, expected {len(data) + 1}"):
        download.fetch(f"{server.url}/blob.bin", tmp_path / "a.bin", len(data) + 1, None, timeout=5,
                       progress=False)
    with pytest.raises(DataError, match=r"/missing\.zip: download failed \(HTTP 404"):
        download.fetch(f"{server.url}/missing.zip", tmp_path / "b.zip", timeout=5, progress=False)


def test_network_failure(tmp_path):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match=rf"127\.0\.0\.1:{port}/x\.zip: download failed \(.*refused"):
        download.fetch(f"http://127.0.0.1:{port}/x.zip", tmp_path / "x.zip", timeout=5, progress=False)


# ---------------------------------------------------------------------------------------------- the CLI
def _zip_folder(folder: Path, under: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(under).as_posix())
    return buffer.getvalue()


def test_main_downloads_a_dataset_coco_instances_can_read(server, tmp_path, monkeypatch, capsys):
    source = tmp_path / "source"
    ensure_shapes(source, "val2017", 3)
    (source / "annotations" / "shapes_val2017.manifest.json").unlink()
    images, annotations = _zip_folder(source / "val2017", source), _zip_folder(source / "annotations", source)
    server.files["/zips/val2017.zip"] = images
    server.files["/annotations/annotations_trainval2017.zip"] = annotations
    annotations_path = "annotations/annotations_trainval2017.zip"
    monkeypatch.setattr(download, "COCO_FILES", {
        "val2017": download.RemoteFile("zips/val2017.zip", len(images), _md5(images)),
        "annotations": download.RemoteFile(annotations_path, len(annotations), None),  # md5 "unknown"
    })
    root = tmp_path / "coco"
    argv = ["--root", str(root), "--base-url", server.url + "/", "--splits", "val2017", "--delete-zips"]
    assert download.main(argv) == 0
    printed = capsys.readouterr().out
    assert f"annotations_trainval2017.zip: {len(annotations)} bytes, md5 {_md5(annotations)}" in printed
    assert not (root / "val2017.zip").exists()  # --delete-zips
    ds = CocoInstances(root / "val2017", root / "annotations" / "instances_val2017.json")
    assert len(ds) == 3 and ds[0][0].shape == (3, 128, 128)
    requests = len(server.log)
    assert download.main(argv) == 0  # everything extracted already: nothing is downloaded
    assert len(server.log) == requests


def test_module_entry_point(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    help_run = subprocess.run([sys.executable, "-m", "minimrcnn.data.download", "--help"],
                              capture_output=True, text=True, env=env, timeout=60)
    assert help_run.returncode == 0 and "--base-url" in help_run.stdout
    assert "Warning" not in help_run.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fail = subprocess.run([sys.executable, "-m", "minimrcnn.data.download", "--root", str(tmp_path),
                           "--base-url", f"http://127.0.0.1:{port}", "--splits", "val2017"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert fail.returncode == 1
    assert fail.stderr.startswith("error: ") and fail.stderr.count("\n") == 1  # one line, no traceback
