"""A 2 GB artifact through the server: streamed both ways, checksum intact, and on Kiln the
server's peak memory stays under 100 MB (it never holds the file)."""

import hashlib
import os

import requests

from helpers import ARTIFACTS_API

SIZE = 2 * 1024**3
CHUNK = 8 * 1024 * 1024
RSS_LIMIT_KB = 100 * 1024


def chunks(digest):
    """2 GB of incompressible bytes made from one random block, hashed as they are sent."""
    block = os.urandom(CHUNK)
    for i in range(SIZE // CHUNK):
        chunk = i.to_bytes(8, "little") + block[8:]
        digest.update(chunk)
        yield chunk


def peak_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmHWM for process {pid}")


def test_two_gigabytes_round_trip(fresh_server):
    server = fresh_server.start()
    url = f"{server.url}{ARTIFACTS_API}/0/large/artifacts/blob.bin"
    sent = hashlib.sha256()
    r = requests.put(url, data=chunks(sent), timeout=600)
    assert r.status_code == 200, r.text[:300]
    assert server.stored_size("0/large/artifacts/blob.bin") == SIZE

    received = hashlib.sha256()
    size = 0
    with requests.get(url, stream=True, timeout=600) as r:
        assert r.status_code == 200
        assert int(r.headers["content-length"]) == SIZE
        for piece in r.iter_content(CHUNK):
            received.update(piece)
            size += len(piece)
    assert size == SIZE
    assert received.hexdigest() == sent.hexdigest()

    if not server.is_mlflow:
        peak = peak_rss_kb(server.proc.pid)
        assert peak < RSS_LIMIT_KB, f"kiln server peaked at {peak // 1024} MB moving a 2 GB file"
