#!/usr/bin/env python3
"""Envelope encryption throughput: ``openkms encrypt``/``decrypt`` on one large file.

    .venv/bin/python benchmarks/envelope_bench.py              # 1 GiB
    .venv/bin/python benchmarks/envelope_bench.py --size 64M   # a quick run
    .venv/bin/python benchmarks/envelope_bench.py --no-esdk    # skip aws-encryption-cli

Starts its own openkms server (temporary data directory, loopback), creates a key, writes a
random file of ``--size`` bytes, then times, each as a separate process on the same file:

- raw AES-256-GCM, file to file in 1 MiB chunks (the ceiling: same I/O, no format, no KMS);
- ``openkms encrypt`` and ``openkms decrypt``, signed (0x0578, the default) and unsigned
  (0x0478) suites;
- ``aws-encryption-cli`` encrypt and decrypt against the same server (installed in its own
  virtual environment under ~/.cache/openkms-tests, as the interop tests do).

Reports wall time, MiB/s, the ratio to raw AES-GCM, the speed-up over aws-encryption-cli, and
each process's peak resident memory (from wait4). Goals: >= 80 % of raw AES-GCM, >= 5x the
ESDK CLI, peak memory constant and under 100 MiB whatever the size.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ESDK_REQUIREMENTS = ("aws-encryption-sdk-cli==4.3.0", "aws-encryption-sdk==3.3.1")
REGION = "us-east-1"
CHUNK = 1024 * 1024

RAW_AES = r"""
import os, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
mode, src, dst = sys.argv[1:4]
aead = AESGCM(bytes(32))
chunk = 1024 * 1024
with open(src, "rb", buffering=chunk) as fin, open(dst, "wb", buffering=chunk) as fout:
    n = 0
    if mode == "e":
        while data := fin.read(chunk):
            n += 1
            fout.write(aead.encrypt(n.to_bytes(12, "big"), data, None))
    else:
        while data := fin.read(chunk + 16):
            n += 1
            fout.write(aead.decrypt(n.to_bytes(12, "big"), data, None))
"""


def parse_size(text: str) -> int:
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    for suffix, factor in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)):
        if value.endswith(suffix):
            return int(float(value[:-1]) * factor)
    return int(value)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- server --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENKMS_", "AWS_"))}
    env.update(extra or {})
    return env


@contextlib.contextmanager
def openkms_server(workdir: Path) -> Iterator[dict[str, str]]:
    data = workdir / "server"
    data.mkdir()
    openkms = [sys.executable, "-m", "openkms.cli.main"]
    created = subprocess.run(
        [*openkms, "accounts", "create", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=True,
    )
    account = json.loads(created.stdout)
    port = free_port()
    with open(data / "server.log", "wb") as log_file:
        proc = subprocess.Popen(
            [*openkms, "serve", "--data-dir", str(data), "--port", str(port), "--audit-log", ""],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=clean_env(),
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/healthz", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("openkms serve did not start") from None
                time.sleep(0.1)
        yield {
            "AWS_ENDPOINT_URL_KMS": endpoint,
            "AWS_ACCESS_KEY_ID": account["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": account["SecretAccessKey"],
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(workdir / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "none"),
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the ESDK CLI in its own venv ---------------------------------------------------------------
def esdk_venv() -> Path:
    """The cached venv with aws-encryption-sdk-cli (the interop tests use the same one)."""
    import fcntl

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "openkms-tests"
    tag = hashlib.sha256(
        json.dumps([sys.version_info[:2], ESDK_REQUIREMENTS]).encode()
    ).hexdigest()[:12]
    venv = cache / f"esdk-venv-{tag}"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"esdk-venv-{tag}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)
            log(f"creating {venv} (pip install {' '.join(ESDK_REQUIREMENTS)})")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *ESDK_REQUIREMENTS],
                check=True,
            )
            (venv / ".complete").write_text("ok\n")
    return venv


# --- measuring -----------------------------------------------------------------------------------
@dataclass
class Run:
    label: str
    seconds: float
    peak_mib: float


TIME = Path("/usr/bin/time")


pending: dict[str, tuple[list[str], dict[str, str]]] = {}


def timed(label: str, argv: list[str], env: dict[str, str]) -> Run:
    """Runs ``argv``; its wall time and peak RSS. The RSS comes from GNU time when present (a
    child spawned straight from this, larger, process would report this process's peak)."""
    pending[label] = (argv, env)
    report = None
    if TIME.exists():
        report = Path(tempfile.mkstemp(prefix="rss-")[1])
        argv = [str(TIME), "-q", "-f", "%M", "-o", str(report), *argv]
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{label} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    peak = float("nan")
    if report is not None:
        peak = int(report.read_text().split()[-1]) / 1024
        report.unlink()
    return Run(label, seconds, peak)


def same_file(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(CHUNK * 8), fb.read(CHUNK * 8)
            if x != y:
                return False
            if not x:
                return True


def make_input(path: Path, size: int) -> None:
    with open(path, "wb") as out:
        left = size
        block = os.urandom(64 * CHUNK)
        while left > 0:
            n = min(left, len(block))
            out.write(block[:n])
            left -= n
            block = block[1:] + block[:1] if left else block  # avoid identical blocks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", type=parse_size, default=1 << 30, help="file size (default 1G)")
    parser.add_argument("--no-esdk", action="store_true", help="skip aws-encryption-cli")
    parser.add_argument(
        "--workdir", type=Path, help="where the files go (default: /dev/shm if roomy, else /tmp)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of each measurement; the best counts (2)"
    )
    args = parser.parse_args(argv)

    base = args.workdir
    shm = Path("/dev/shm")
    if base is None and shm.is_dir() and shutil.disk_usage(shm).free > 3.5 * args.size:
        base = shm  # tmpfs: measures the code, not this machine's disk
    workdir = Path(tempfile.mkdtemp(prefix="envelope-bench-", dir=base))
    log(f"working in {workdir}")
    try:
        return run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path) -> int:
    size = args.size
    plain = workdir / "plain.bin"
    log(f"writing {size / (1 << 20):.0f} MiB of random data")
    make_input(plain, size)
    esdk_bin: Path | None = None
    if not args.no_esdk:
        esdk_bin = esdk_venv() / "bin" / "aws-encryption-cli"

    with openkms_server(workdir) as aws_env:
        env = clean_env(aws_env)
        import boto3

        kms = boto3.session.Session().client(
            "kms",
            region_name=REGION,
            endpoint_url=aws_env["AWS_ENDPOINT_URL_KMS"],
            aws_access_key_id=aws_env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"],
        )
        key = kms.create_key(Description="envelope benchmark")["KeyMetadata"]["Arn"]
        openkms = [sys.executable, "-m", "openkms.cli.main"]
        runs: dict[str, Run] = {}
        enc, dec = workdir / "out.enc", workdir / "out.dec"

        def record(run_: Run) -> None:
            for _ in range(args.repeat - 1):
                again = timed(run_.label, *pending[run_.label])
                if again.seconds < run_.seconds:
                    run_ = Run(run_.label, again.seconds, max(run_.peak_mib, again.peak_mib))
                else:
                    run_ = Run(run_.label, run_.seconds, max(run_.peak_mib, again.peak_mib))
            runs[run_.label] = run_
            mib_s = size / (1 << 20) / run_.seconds
            log(
                f"  {run_.label:<34} {run_.seconds:8.2f} s {mib_s:9.1f} MiB/s "
                f"{run_.peak_mib:7.1f} MiB peak"
            )

        log("raw AES-256-GCM")
        py = [sys.executable, "-c", RAW_AES]
        record(timed("raw AES-GCM encrypt", [*py, "e", str(plain), str(enc)], env))
        record(timed("raw AES-GCM decrypt", [*py, "d", str(enc), str(dec)], env))
        assert same_file(plain, dec)
        for suite, flags in (("signed 0x0578", []), ("unsigned 0x0478", ["--unsigned"])):
            log(f"openkms, {suite}")
            record(
                timed(
                    f"openkms encrypt {suite}",
                    [
                        *openkms,
                        "encrypt",
                        "--key",
                        key,
                        "--quiet",
                        *flags,
                        "-o",
                        str(enc),
                        str(plain),
                    ],
                    env,
                )
            )
            record(
                timed(
                    f"openkms decrypt {suite}",
                    [*openkms, "decrypt", "--quiet", "-o", str(dec), str(enc)],
                    env,
                )
            )
            assert same_file(plain, dec), "round trip mismatch"
            dec.unlink()
        if esdk_bin is not None:
            log("aws-encryption-cli (default suite 0x0578)")
            esdk = [str(esdk_bin), "-S", "-w", f"key={key}"]
            record(
                timed(
                    "esdk-cli encrypt signed 0x0578",
                    [*esdk, "-e", "-i", str(plain), "-o", str(enc)],
                    env,
                )
            )
            record(
                timed(
                    "esdk-cli decrypt signed 0x0578",
                    [*esdk, "-d", "-i", str(enc), "-o", str(dec)],
                    env,
                )
            )
            assert same_file(plain, dec), "esdk round trip mismatch"
    print_table(runs, size)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "size": size,
                    "runs": {
                        k: {"seconds": v.seconds, "peak_mib": v.peak_mib} for k, v in runs.items()
                    },
                },
                indent=2,
            )
        )
    return 0


def print_table(runs: dict[str, Run], size: int) -> None:
    mib = size / (1 << 20)
    print(f"\nEnvelope benchmark, {mib:.0f} MiB file, {os.cpu_count()} CPU(s)\n")
    header = (
        f"| {'run':<32} | {'s':>7} | {'MiB/s':>8} | {'% raw':>6} | {'vs ESDK':>7} "
        f"| {'peak MiB':>8} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for label, run_ in runs.items():
        op = "encrypt" if "encrypt" in label else "decrypt"
        raw = runs.get(f"raw AES-GCM {op}")
        esdk = runs.get(f"esdk-cli {op} signed 0x0578")
        pct = (
            f"{100 * raw.seconds / run_.seconds:5.0f}%"
            if raw and label.startswith("openkms")
            else ""
        )
        versus = (
            f"{esdk.seconds / run_.seconds:6.1f}x" if esdk and label.startswith("openkms") else ""
        )
        print(
            f"| {label:<32} | {run_.seconds:7.2f} | {mib / run_.seconds:8.1f} | {pct:>6} | "
            f"{versus:>7} | {run_.peak_mib:8.1f} |"
        )
    print()


if __name__ == "__main__":
    sys.exit(main())
