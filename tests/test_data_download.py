import hashlib
import http.server
import threading
from dataclasses import replace

import pytest

from disentbench.data.cache import ChecksumError, DataError, DatasetUnavailable
from disentbench.data.download import fetch_file
from disentbench.data.manifest import FileSpec

PAYLOAD = bytes(range(256)) * 4000  # 1,024,000 bytes


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves files from ``server.files``; honours ``Range: bytes=N-``; ``server.cut`` truncates bodies."""

    def do_GET(self):  # noqa: N802
        data = self.server.files.get(self.path.lstrip("/"))
        self.server.requests.append((self.path, self.headers.get("Range")))
        if data is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and self.server.ranges:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.cut is not None:
            body = body[: self.server.cut]
            self.server.cut = None
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    srv.files, srv.requests, srv.cut, srv.ranges = {"data.bin": PAYLOAD}, [], None, True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _spec(server, **kw):
    url = f"http://127.0.0.1:{server.server_address[1]}/data.bin"
    spec = FileSpec("data.bin", (url,), len(PAYLOAD), "sha256:" + hashlib.sha256(PAYLOAD).hexdigest())
    return replace(spec, **kw)


def test_download_verifies_and_renames(server, tmp_path):
    path = fetch_file(_spec(server), tmp_path, progress=False)
    assert path == tmp_path / "data.bin" and path.read_bytes() == PAYLOAD
    assert not (tmp_path / "data.bin.part").exists()


def test_truncated_download_resumes_with_range(server, tmp_path):
    server.cut = 300_000
    with pytest.raises(DataError, match="run the command again to resume"):
        fetch_file(_spec(server), tmp_path, progress=False)
    part = tmp_path / "data.bin.part"
    assert part.stat().st_size == 300_000 and not (tmp_path / "data.bin").exists()
    path = fetch_file(_spec(server), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert server.requests[-1][1] == "bytes=300000-"


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    server.ranges = False
    (tmp_path / "data.bin.part").write_bytes(b"garbage" * 10)
    assert fetch_file(_spec(server), tmp_path, progress=False).read_bytes() == PAYLOAD


def test_checksum_failure_leaves_no_file(server, tmp_path):
    bad = _spec(server, checksum="sha256:" + "0" * 64)
    with pytest.raises(ChecksumError, match="deleted"):
        fetch_file(bad, tmp_path, progress=False)
    assert not (tmp_path / "data.bin").exists() and not (tmp_path / "data.bin.part").exists()


def test_md5_and_unpublished_size(server, tmp_path):
    spec = _spec(server, size=0, checksum="md5:" + hashlib.md5(PAYLOAD).hexdigest())
    assert fetch_file(spec, tmp_path, progress=False).stat().st_size == len(PAYLOAD)


def test_offline_error_names_file_size_checksum_and_place(server, tmp_path, monkeypatch):
    monkeypatch.setenv("DISENTBENCH_OFFLINE", "1")
    spec = _spec(server)
    with pytest.raises(DatasetUnavailable) as err:
        fetch_file(spec, tmp_path, progress=False)
    msg = str(err.value)
    assert "data.bin" in msg and "1,024,000 bytes" in msg and spec.digest in msg and str(tmp_path) in msg
    assert server.requests == []


def test_unreachable_server_names_the_file(tmp_path):
    spec = FileSpec("x.bin", ("http://127.0.0.1:9/x.bin",), 10, "md5:" + "0" * 32)
    with pytest.raises(DatasetUnavailable, match=r"x\.bin \(10 bytes, md5 0+\)"):
        fetch_file(spec, tmp_path, progress=False, timeout=5)


def test_unwritable_cache_dir_is_a_clear_error(server, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")  # a file where the cache directory should be: fails even as root
    with pytest.raises(DataError, match="cannot create cache directory"):
        fetch_file(_spec(server), blocker / "sub", progress=False)


def test_full_disk_keeps_part_for_resume(server, tmp_path, monkeypatch):
    import builtins
    import errno

    from disentbench.data import download

    class FullDisk:
        def __init__(self, fh):
            self.fh, self.written = fh, 0

        def write(self, block):
            if self.written >= 1 << 20:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(block)
            return self.fh.write(block)

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(download, "open", lambda *a, **k: FullDisk(builtins.open(*a, **k)), raising=False)
    big = PAYLOAD * 3
    server.files["data.bin"] = big
    spec = _spec(server, size=len(big), checksum="sha256:" + hashlib.sha256(big).hexdigest())
    with pytest.raises(DataError, match="disk full"):
        fetch_file(spec, tmp_path, progress=False)
    assert (tmp_path / "data.bin.part").stat().st_size == 1 << 20 and not (tmp_path / "data.bin").exists()
    monkeypatch.undo()
    assert fetch_file(spec, tmp_path, progress=False).read_bytes() == big
    assert server.requests[-1][1] == f"bytes={1 << 20}-"


def test_cli_fetch_downloads_verifies_converts_end_to_end(server, tmp_path, monkeypatch, capsys):
    """`disentbench data fetch` against the local server, with a manifest pointing at it (small grid)."""
    import numpy as np

    from disentbench.cli import main
    from disentbench.data import get_dataset, official
    from disentbench.data.official import OfficialEntry
    from disentbench.factors import FactorSpace

    space = FactorSpace(("shape", "scale", "orientation", "posX", "posY"), (3, 1, 2, 2, 2))
    real = official._entries()
    monkeypatch.setattr(official, "_entries", lambda: {
        k: OfficialEntry((lambda: space) if k == "dsprites" else e.space, e.channels, e.preparer, e.output)
        for k, e in real.items()
    })
    imgs = (np.random.default_rng(3).random((space.n_points, 64, 64)) < 0.5).astype(np.uint8)
    classes = np.column_stack([np.zeros(space.n_points, np.int64), space.all_classes()])
    buf = tmp_path / "fixture.npz"
    np.savez_compressed(buf, imgs=imgs, latents_classes=classes, latents_values=classes.astype(float))
    data = buf.read_bytes()
    name = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
    server.files[name] = data
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "dsprites.toml").write_text(
        f'name = "dsprites"\nversion = "1"\n[format]\nalternatives = true\n[[files]]\nname = "{name}"\n'
        f'urls = ["http://127.0.0.1:{server.server_address[1]}/{name}"]\nsize = {len(data)}\n'
        f'checksum = "md5:{hashlib.md5(data).hexdigest()}"\n'
    )
    monkeypatch.setenv("DISENTBENCH_MANIFESTS", str(manifests))
    cache = tmp_path / "cache"
    assert main(["data", "fetch", "dsprites", "--cache-dir", str(cache)]) == 0
    assert f"{space.n_points:,} images ready" in capsys.readouterr().out
    assert main(["data", "verify", "dsprites", "--cache-dir", str(cache)]) == 0
    assert "ok  dsprites_packed.npy" in capsys.readouterr().out
    ds = get_dataset("dsprites", cache_dir=cache)
    np.testing.assert_array_equal(ds.images(np.arange(space.n_points))[..., 0], imgs)
    left = sorted(p.name for p in (cache / "dsprites").iterdir() if not p.name.endswith(".lock"))
    assert left == sorted([name, name + ".verified", "dsprites_packed.npy", "dsprites_packed.npy.json"])  # no .part


def test_too_little_free_space_is_reported_before_downloading(server, tmp_path, monkeypatch):
    from collections import namedtuple

    from disentbench.data import download

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(download.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 10, 10))
    with pytest.raises(DataError, match="needs 1,024,000 more bytes"):
        fetch_file(_spec(server), tmp_path, progress=False)
    assert server.requests == []


@pytest.mark.parametrize("cut", [300_000, 1])
def test_cut_off_download_without_published_size_is_kept_and_resumed(server, tmp_path, cut):
    """Issue 17.1: with size 0 in the manifest, Content-Length tells a short transfer from a bad file."""
    spec = _spec(server, size=0)
    server.cut = cut
    with pytest.raises(DataError, match=f"stopped at {cut:,} of 1,024,000 bytes.*resume"):
        fetch_file(spec, tmp_path, progress=False)
    assert (tmp_path / "data.bin.part").stat().st_size == cut and not (tmp_path / "data.bin").exists()
    server.cut = 1000  # the resumed transfer is cut too: Content-Range gives the total
    with pytest.raises(DataError, match=f"stopped at {cut + 1000:,} of 1,024,000 bytes"):
        fetch_file(spec, tmp_path, progress=False)
    assert fetch_file(spec, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert server.requests[-1][1] == f"bytes={cut + 1000}-"


def test_complete_download_without_published_size_failing_its_checksum_is_deleted(server, tmp_path):
    bad = _spec(server, size=0, checksum="sha256:" + "0" * 64)
    with pytest.raises(ChecksumError, match="deleted"):
        fetch_file(bad, tmp_path, progress=False)
    assert not (tmp_path / "data.bin.part").exists()
