#!/usr/bin/env python3
"""Artifact benchmark: Kiln vs `mlflow server` on the proxied artifact API.

Starts each server on a fresh SQLite store and a fresh artifact folder on a
loopback port, creates an experiment and a run with the REST API, then
uploads and downloads files through

    PUT/GET /api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts/<name>

(100 files of 1 MiB and one 1 GiB file; --quick: 20 files and 64 MiB).
Uploads stream from a file on disk. A timed download only reads the body into
a reused buffer and counts its bytes; after each download series, untimed,
every file is downloaded again and its SHA-256 and length are compared with
the source file's. The disk's own speed is measured in the same run, on the
same filesystem: a durable copy of the big file (copy, then fsync of the new
file and of its folder, as Kiln does for every upload), a durable copy of
each small file one after the other, a plain copy of the big file (no sync)
and a plain read of it. Prints a Markdown table with MB/s (1 MB = 2^20
bytes), Kiln ÷ MLflow ratios and Kiln as a percentage of the disk.

Standard library only. Server start/stop comes from bench/tracking/bench.py.
Normally started through bench/artifacts/run, which prepares the virtualenv.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import http.client
import json
import os
import shutil
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tracking"))
import bench as tracking  # noqa: E402  (bench/tracking/bench.py)

log = tracking.log
ALL_SERVERS = ("kiln", "mlflow")
MB = 1 << 20
CHUNK = 1 << 20
ART = "/api/2.0/mlflow-artifacts/artifacts"
BASE_DIR = "/var/tmp/kiln-bench-artifacts"

SIZES = {
    "full": dict(small_files=100, small_mb=1, big_mb=1024),
    "quick": dict(small_files=20, small_mb=1, big_mb=64),
}

# Hard caps so that no loop can run away, whatever the server does.
REQUEST_TIMEOUT_S = 900.0  # per socket operation
CAP_PHASE_S = 1800.0  # a small-file series stops here

# Targets from the issue.
TARGET_VS_MLFLOW = 5.0
TARGET_VS_DISK = 0.80


# --------------------------------------------------------------------------
# Test files and the disk's own speed
# --------------------------------------------------------------------------


def write_random(path: str, size: int) -> str:
    """Writes `size` random bytes to `path`; returns their SHA-256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left > 0:
            block = os.urandom(min(CHUNK, left))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest()


def make_files(fdir: str, cfg: dict) -> dict:
    os.makedirs(fdir, exist_ok=True)
    small = []
    for i in range(cfg["small_files"]):
        p = os.path.join(fdir, f"small-{i:03d}.bin")
        small.append((p, cfg["small_mb"] * MB, write_random(p, cfg["small_mb"] * MB)))
    big_path = os.path.join(fdir, "big.bin")
    big = (big_path, cfg["big_mb"] * MB, write_random(big_path, cfg["big_mb"] * MB))
    os.sync()
    return {"small": small, "big": big}


def read_file(path: str) -> int:
    """Reads `path` into one reused 1 MB buffer; returns the byte count."""
    mv = memoryview(bytearray(CHUNK))
    total = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(mv):
            total += n
    return total


def fsync_path(path: str, folder: bool = False) -> None:
    """fsync of a file or folder by name, as Kiln does after each upload (open, sync_all)."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if folder else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_copy(src: str, dst: str) -> None:
    """Copies `src` to `dst`, then syncs the new file and the folder that names it."""
    shutil.copyfile(src, dst)
    fsync_path(dst)
    fsync_path(os.path.dirname(dst), folder=True)


def disk_speed(files: dict, fdir: str) -> dict:
    """The disk's own speed on the test files' filesystem; each step starts with no dirty pages."""
    path, size, _ = files["big"]
    copy = os.path.join(fdir, "big-copy.bin")
    out: dict = {}

    # Durable copy of the big file: the reference for the big upload.
    os.sync()
    t0 = time.perf_counter()
    durable_copy(path, copy)
    out["durable_copy_mbps"] = size / MB / (time.perf_counter() - t0)
    os.remove(copy)

    # Durable copies of the small files, one after the other, all into one folder as the
    # uploads go into one run's folder: the reference for the small uploads.
    cdir = os.path.join(fdir, "small-copies")
    os.makedirs(cdir)
    os.sync()
    nbytes = 0
    t0 = time.perf_counter()
    for src, fsize, _ in files["small"]:
        durable_copy(src, os.path.join(cdir, os.path.basename(src)))
        nbytes += fsize
    out["durable_copy_small_mbps"] = nbytes / MB / (time.perf_counter() - t0)
    shutil.rmtree(cdir)

    # Plain copy of the big file into the page cache (no sync): the reference for the big
    # download, which also reads the file and lands its bytes in memory without syncing.
    os.sync()
    t0 = time.perf_counter()
    shutil.copyfile(path, copy)
    out["copy_mbps"] = size / MB / (time.perf_counter() - t0)
    os.remove(copy)

    # Plain read of the big file, 1 MB at a time into one buffer, for information: memory speed,
    # which no transfer over a socket approaches.
    os.sync()
    t0 = time.perf_counter()
    got = read_file(path)
    out["read_mbps"] = size / MB / (time.perf_counter() - t0)
    if got != size:
        raise RuntimeError(f"big file changed on disk: read {got} of {size} bytes")
    os.sync()
    return out


# --------------------------------------------------------------------------
# Transfers
# --------------------------------------------------------------------------


class ArtifactClient:
    """One keep-alive http.client connection; streaming PUT and GET."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S,
                                               blocksize=CHUNK)
        self.buf = memoryview(bytearray(CHUNK))  # reused by every download

    def put(self, path: str, src: str, size: int) -> None:
        c = self.conn
        c.putrequest("PUT", path, skip_accept_encoding=True)
        c.putheader("Content-Type", "application/octet-stream")
        c.putheader("Content-Length", str(size))
        c.endheaders()
        with open(src, "rb") as f:
            sent = c.sock.sendfile(f)
        if sent != size:
            raise RuntimeError(f"PUT {path}: sent {sent} of {size} bytes")
        resp = c.getresponse()
        body = resp.read()
        if not 200 <= resp.status < 300:
            raise RuntimeError(f"PUT {path} -> {resp.status}: {body[:300]!r}")

    def _open(self, path: str) -> http.client.HTTPResponse:
        c = self.conn
        c.request("GET", path)
        resp = c.getresponse()
        if resp.status != 200:
            body = resp.read()
            raise RuntimeError(f"GET {path} -> {resp.status}: {body[:300]!r}")
        return resp

    def get(self, path: str, size: int) -> None:
        """The timed download: the body goes into one reused buffer and is only counted."""
        resp = self._open(path)
        mv = self.buf
        total = 0
        while n := resp.readinto(mv):
            total += n
        if total != size:
            raise RuntimeError(f"GET {path}: got {total} of {size} bytes")

    def check(self, path: str, size: int, digest: str) -> None:
        """The untimed check: downloads `path` again and compares SHA-256 and length with the source."""
        resp = self._open(path)
        mv = self.buf
        h = hashlib.sha256()
        total = 0
        while n := resp.readinto(mv):
            h.update(mv[:n])
            total += n
        got = h.hexdigest()
        if total != size or got != digest:
            raise RuntimeError(f"GET {path}: got {total} of {size} bytes, "
                               f"sha256 {'ok' if got == digest else 'MISMATCH'}")

    def close(self) -> None:
        self.conn.close()


def transfer(client: ArtifactClient, prefix: str, items: list, upload: bool) -> dict:
    """Uploads or downloads `items` one after the other; MB/s over the whole series."""
    done = nbytes = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    for path, size, _ in items:
        if time.perf_counter() - t0 > CAP_PHASE_S:
            break
        url = f"{prefix}/{os.path.basename(path)}"
        if upload:
            client.put(url, path, size)
        else:
            client.get(url, size)
        done += 1
        nbytes += size
    wall = time.perf_counter() - t0
    return {"files": done, "capped": done < len(items), "mb": nbytes / MB, "wall_s": round(wall, 3),
            "mbps": nbytes / MB / wall if wall > 0 else None,
            "client_cpu_s": round(time.process_time() - c0, 3)}


def check_downloads(client: ArtifactClient, prefix: str, items: list) -> int:
    """Untimed, after a download series: downloads each file again and compares its SHA-256
    and length with the source file's. Returns the number checked; raises on the first mismatch."""
    for path, size, digest in items:
        client.check(f"{prefix}/{os.path.basename(path)}", size, digest)
    return len(items)


def bench_server(name: str, args, files: dict, workdir: str) -> dict:
    res: dict = {"server": name, "errors": []}
    try:
        srv = tracking.Server(name, args, workdir)
    except Exception as exc:  # noqa: BLE001
        res["errors"].append(f"setup: {exc}")
        log(f"{name}: {exc}")
        return res
    res["config"] = srv.config
    res["version"] = tracking.server_version(name, args)
    client = None
    try:
        srv.start()
        res["settle_s"] = round(srv.settle(), 2)
        rest = tracking.Client(srv.port)
        exp = tracking.create_experiment(rest, "artifacts")
        run = tracking.create_run(rest, exp, "artifacts")
        rest.close()
        prefix = f"{ART}/{exp}/{run}/artifacts"
        client = ArtifactClient(srv.port)
        steps = [
            ("up_small", files["small"], True),
            ("down_small", files["small"], False),
            ("up_big", [files["big"]], True),
            ("down_big", [files["big"]], False),
        ]
        for key, items, upload in steps:
            os.sync()  # write-back of the previous step is not this step's cost
            log(f"{name}: {key} ...")
            try:
                res[key] = transfer(client, prefix, items, upload)
                log(f"{name}: {key}: {res[key]['mbps']:.1f} MB/s in {res[key]['wall_s']:.2f} s")
                if res[key]["capped"]:
                    res["errors"].append(f"{key}: stopped at the time cap after {res[key]['files']} files")
            except Exception as exc:  # noqa: BLE001 - go on with the other steps
                res["errors"].append(f"{key}: {exc}")
                log(f"{name}: {key} FAILED: {exc}")
                client.close()
            if not upload and key in res:
                # Untimed: each file the series downloaded, again, against the source's SHA-256.
                res[key]["checked"] = 0
                try:
                    res[key]["checked"] = check_downloads(client, prefix, items[:res[key]["files"]])
                    log(f"{name}: {key}: {res[key]['checked']} files checked (SHA-256, length)")
                except Exception as exc:  # noqa: BLE001
                    res["errors"].append(f"{key} check: {exc}")
                    log(f"{name}: {key} check FAILED: {exc}")
                    client.close()
            if srv.proc.poll() is not None:
                res["errors"].append(f"server exited with {srv.proc.returncode} during {key}")
                break
    except Exception as exc:  # noqa: BLE001
        res["errors"].append(f"start: {exc}")
        log(f"{name}: FAILED: {exc}")
    finally:
        if client:
            client.close()
        srv.stop()
        shutil.rmtree(srv.art, ignore_errors=True)  # the uploaded copies
    return res


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

ROWS = [
    # label, key, disk reference
    ("Upload {n} × {s} MB (MB/s)", "up_small", "durable_copy_small_mbps"),
    ("Download {n} × {s} MB (MB/s)", "down_small", "copy_mbps"),
    ("Upload 1 × {b} MB (MB/s)", "up_big", "durable_copy_mbps"),
    ("Download 1 × {b} MB (MB/s)", "down_big", "copy_mbps"),
]
REF_NAMES = {
    "durable_copy_small_mbps": "durable copy, {n} × {s} MB",
    "durable_copy_mbps": "durable copy",
    "copy_mbps": "copy",
}


def fmt(v) -> str:
    if v is None:
        return "–"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def render_markdown(results: dict, disk: dict, cfg: dict, meta: dict) -> str:
    names = [n for n in ALL_SERVERS if n in results]
    both = "kiln" in names and "mlflow" in names
    head = ["Workload"] + names
    if both:
        head.append("Kiln ÷ MLflow")
    if "kiln" in names:
        head += ["Kiln % of disk", "Kiln target"]
    lines = [f"Mode: `{meta['mode']}`, {meta['date']}, {meta['host']}.", ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for label, key, ref in ROWS:
        vals = {n: (results[n].get(key) or {}).get("mbps") for n in names}
        row = [label.format(n=cfg["small_files"], s=cfg["small_mb"], b=cfg["big_mb"])]
        row += [fmt(vals[n]) for n in names]
        k, m = vals.get("kiln"), vals.get("mlflow")
        if both:
            row.append(f"{k / m:,.1f}×" if k and m else "–")
        if "kiln" in names:
            pct = 100 * k / disk[ref] if k and disk.get(ref) else None
            ref_name = REF_NAMES[ref].format(n=cfg["small_files"], s=cfg["small_mb"])
            row.append(f"{pct:.0f}% of {ref_name}" if pct is not None else "–")
            targets = []
            if both and k and m:
                targets.append(f"≥ {TARGET_VS_MLFLOW:.0f}× MLflow: {'met' if k / m >= TARGET_VS_MLFLOW else 'missed'}")
            else:
                targets.append(f"≥ {TARGET_VS_MLFLOW:.0f}× MLflow")
            if key.endswith("big"):
                t = f"≥ {100 * TARGET_VS_DISK:.0f}% disk"
                targets.append(t + (f": {'met' if pct >= 100 * TARGET_VS_DISK else 'missed'}" if pct is not None else ""))
            row.append("; ".join(targets))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    n, s, b = cfg["small_files"], cfg["small_mb"], cfg["big_mb"]
    lines.append("| Disk, same filesystem | MB/s |")
    lines.append("|---|---:|")
    lines.append(f"| 1 × {b} MB: `shutil.copyfile`, then fsync of the new file and of its folder (durable copy) "
                 f"| {fmt(disk.get('durable_copy_mbps'))} |")
    lines.append(f"| {n} × {s} MB, one after the other: `shutil.copyfile`, then fsync of the new file and "
                 f"of its folder (durable copy, {n} × {s} MB) | {fmt(disk.get('durable_copy_small_mbps'))} |")
    lines.append(f"| 1 × {b} MB: `shutil.copyfile`, no sync (copy into the page cache) "
                 f"| {fmt(disk.get('copy_mbps'))} |")
    lines.append(f"| 1 × {b} MB: read, 1 MB `readinto` into one buffer (memory speed, for information) | {fmt(disk.get('read_mbps'))} |")
    lines.append("")
    checked = [nm for nm in names
               if all((results[nm].get(k) or {}).get("checked") == (results[nm].get(k) or {}).get("files", -1)
                      for k in ("down_small", "down_big"))]
    lines.append("Uploads are compared with the durable copy (Kiln syncs each uploaded file and its folder "
                 "before it answers; MLflow does not); downloads, which read the file and land its bytes in "
                 "memory, with the copy into the page cache. 1 MB = 2^20 bytes. "
                 + (f"Every file downloaded from {' and '.join(checked)} was downloaded again afterwards, "
                    "untimed, and its SHA-256 and length matched the source file's."
                    if checked else "No server's downloads all passed the check; see Problems."))
    lines.append("")
    lines.append("Servers:")
    for n in names:
        r = results[n]
        lines.append(f"- {n}: {r.get('version', '?')}; {r.get('config', 'not run')}.")
    problems = [f"- {n}: {e}" for n in names for e in results[n].get("errors", [])]
    if problems:
        lines += ["", "Problems:"] + problems
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default=",".join(ALL_SERVERS),
                    help="comma-separated subset of: " + ",".join(ALL_SERVERS))
    ap.add_argument("--quick", action="store_true", help="20 × 1 MB and one 64 MB file, for checking the harness")
    ap.add_argument("--workdir", default="",
                    help=f"test files, stores, logs and results (default {BASE_DIR}/<time>)")
    ap.add_argument("--out", default="", help="also write the Markdown table to this file")
    ap.add_argument("--kiln-bin", default="", help="kiln binary (default $KILN_BIN, then /var/tmp/kiln-target/...)")
    ap.add_argument("--mlflow-venv", default=os.environ.get("MLFLOW_VENV", "/var/tmp/kiln-venv"))
    args = ap.parse_args()
    args.mlflow_workers = 0  # MLflow's defaults
    args.fml_venv = ""

    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    bad = [s for s in servers if s not in ALL_SERVERS]
    if bad:
        ap.error(f"unknown server(s): {', '.join(bad)}")
    mode = "quick" if args.quick else "full"
    cfg = SIZES[mode]
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = os.path.abspath(args.workdir or os.path.join(BASE_DIR, stamp))
    fdir = os.path.join(workdir, "files")
    os.makedirs(workdir, exist_ok=True)

    def on_signal(signum, frame):
        shutil.rmtree(fdir, ignore_errors=True)
        tracking._on_signal(signum, frame)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)

    log(f"mode {mode}; servers {','.join(servers)}; workdir {workdir}")
    results: dict = {}
    disk: dict = {}
    try:
        log(f"writing {cfg['small_files']} × {cfg['small_mb']} MB and 1 × {cfg['big_mb']} MB under {fdir}")
        files = make_files(fdir, cfg)
        disk = disk_speed(files, fdir)
        log("disk: " + ", ".join(f"{k} {v:.0f}" for k, v in disk.items()))
        for name in servers:
            results[name] = bench_server(name, args, files, workdir)
            with open(os.path.join(workdir, "results.json"), "w") as f:
                json.dump({"mode": mode, "cfg": cfg, "disk": disk, "results": results}, f, indent=2)
    finally:
        tracking._cleanup()
        shutil.rmtree(fdir, ignore_errors=True)  # test files, the 1 GB one included

    meta = {"mode": "--quick" if args.quick else "full", "date": time.strftime("%Y-%m-%d"),
            "host": f"{os.cpu_count()} cores, {tracking._mem_gib():.0f} GiB"}
    md = render_markdown(results, disk, cfg, meta)
    with open(os.path.join(workdir, "results.md"), "w") as f:
        f.write(md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(md)
    sys.stdout.write(md)
    log(f"results: {workdir}/results.md, {workdir}/results.json")
    return 1 if any(r.get("errors") for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
