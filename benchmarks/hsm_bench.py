#!/usr/bin/env python3
"""The file root of trust and a PKCS#11 one (SoftHSM2) side by side.

    benchmarks/hsm_bench.py               # every measurement, 5 rounds, median
    benchmarks/hsm_bench.py --quick       # 1 round, fewer operations: a smoke run

Measures, in process (no HTTP, so that the root's own cost shows):

1. raw wrap/unwrap ops/s of each root (a 32-byte secret, a key-material AAD);
2. the two Python PKCS#11 bindings on the same token: python-pkcs11 and PyKCS11 (when
   installed), CKM_AES_GCM encrypt/decrypt of 32 bytes;
3. sessions: one session under the module lock, against one session per thread (still under
   the lock python-pkcs11 needs, as it initializes the module without OS locking);
4. KMS Encrypt and Decrypt through the service layer (SQLite storage) on each root, with the
   unwrapped-material cache (the default) and without it (``material_cache_entries=0``: every
   request unwraps its key material through the root).

Prints a table and writes the figures to benchmarks/results/<UTC timestamp>-hsm.json. SoftHSM2
is installed with apt-get when missing and we are root; its token lives in a temporary
SOFTHSM2_CONF directory removed at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import kmsbench as kb  # noqa: E402

kb.reexec_in_product_venv(__file__)

import orjson  # noqa: E402

MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
)
AAD = (
    b"openkms:key-material:v1:arn:aws:kms:us-east-1:111122223333:key/"
    + b"0" * 36
    + b":"
    + (b"f" * 64)
)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def softhsm_module() -> str:
    def found() -> str | None:
        return next((m for m in MODULES if os.path.exists(m)), None)

    if shutil.which("softhsm2-util") is None or found() is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            sys.exit("SoftHSM2 is not installed: apt-get install softhsm2")
        log("installing softhsm2 with apt-get…")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "softhsm2"], check=True)
    module = found()
    if module is None:
        sys.exit("libsofthsm2.so not found")
    return module


def make_token(base: Path) -> tuple[str, str]:
    tokens = base / "tokens"
    tokens.mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    label, pin = "bench", secrets.token_hex(8)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", "12345678",
         "--pin", pin],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return label, pin


def rate(n: int, fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def median_rate(rounds: int, n: int, fn: Callable[[], object]) -> float:
    rate(max(n // 10, 10), fn)  # warm up
    return statistics.median(rate(n, fn) for _ in range(rounds))


# --- 1. raw roots -----------------------------------------------------------------------------
def bench_roots(roots: dict[str, Any], rounds: int, n: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    secret = os.urandom(32)
    for name, root in roots.items():
        blob = root.wrap(secret, AAD)
        out[name] = {
            "wrap_per_s": median_rate(rounds, n, lambda r=root: r.wrap(secret, AAD)),
            "unwrap_per_s": median_rate(rounds, n, lambda r=root, b=blob: r.unwrap(b, AAD)),
        }
    return out


# --- 2. bindings ------------------------------------------------------------------------------
def bench_bindings(
    module: str, token: str, pin: str, key_label: str, rounds: int, n: int
) -> dict[str, Any]:
    import pkcs11
    from pkcs11 import Mechanism, ObjectClass
    from pkcs11.mechanisms import GCMParams

    out: dict[str, Any] = {}
    lock = threading.Lock()
    lib = pkcs11.lib(os.path.realpath(module))
    session = lib.get_token(token_label=token).open()  # the process is logged in already
    key = session.get_key(object_class=ObjectClass.SECRET_KEY, label=key_label)
    data = os.urandom(32)

    def p_enc() -> bytes:
        iv = os.urandom(12)
        with lock:
            return iv + key.encrypt(
                data, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, AAD)
            )

    blob = p_enc()

    def p_dec() -> bytes:
        with lock:
            return key.decrypt(
                blob[12:], mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(blob[:12], AAD)
            )

    out["python-pkcs11"] = {
        "encrypt_per_s": median_rate(rounds, n, p_enc),
        "decrypt_per_s": median_rate(rounds, n, p_dec),
    }
    # PyKCS11 loads the same module: in this process it would share (and finalize) the
    # library state python-pkcs11 uses, so it is measured in a child process.
    proc = subprocess.run(
        [sys.executable, __file__, "--pykcs11", module, token, key_label, str(rounds), str(n)],
        capture_output=True,
        env={**os.environ, "BENCH_PIN": pin},
        check=False,
    )
    if proc.returncode == 0:
        out["PyKCS11"] = orjson.loads(proc.stdout)
    else:
        out["PyKCS11"] = proc.stderr.decode(errors="replace").strip().splitlines()[-1]
    return out


def pykcs11_child(module: str, token: str, key_label: str, rounds: int, n: int) -> int:
    try:
        import PyKCS11
    except ImportError:
        print("PyKCS11 is not installed (pip install PyKCS11 to compare)", file=sys.stderr)
        return 1
    plib = PyKCS11.PyKCS11Lib()
    plib.load(os.path.realpath(module))
    slot = next(
        s
        for s in plib.getSlotList(tokenPresent=True)
        if plib.getTokenInfo(s).label.strip() == token
    )
    session = plib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION)
    session.login(os.environ["BENCH_PIN"])
    key = session.findObjects(
        [(PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY), (PyKCS11.CKA_LABEL, key_label)]
    )[0]
    data = os.urandom(32)

    def enc() -> bytes:
        iv = os.urandom(12)
        return iv + bytes(session.encrypt(key, data, PyKCS11.AES_GCM_Mechanism(iv, AAD, 128)))

    blob = enc()

    def dec() -> bytes:
        return bytes(
            session.decrypt(key, blob[12:], PyKCS11.AES_GCM_Mechanism(blob[:12], AAD, 128))
        )

    figures = {
        "encrypt_per_s": median_rate(rounds, n, enc),
        "decrypt_per_s": median_rate(rounds, n, dec),
    }
    sys.stdout.write(orjson.dumps(figures).decode())
    return 0


# --- 3. sessions --------------------------------------------------------------------------------
def bench_sessions(
    module: str, token: str, key_label: str, rounds: int, n: int
) -> dict[str, float]:
    import pkcs11
    from pkcs11 import Mechanism, ObjectClass
    from pkcs11.mechanisms import GCMParams

    from openkms.rootoftrust.pkcs11 import _library

    library = _library(module)
    lib = pkcs11.lib(os.path.realpath(module))
    data = os.urandom(32)

    def threaded(threads: int, own_sessions: bool) -> float:
        sessions = [
            lib.get_token(token_label=token).open() for _ in range(threads if own_sessions else 1)
        ]
        keys = [s.get_key(object_class=ObjectClass.SECRET_KEY, label=key_label) for s in sessions]
        per_thread = n // threads

        def work(key: Any) -> None:
            for _ in range(per_thread):
                iv = os.urandom(12)
                with library.lock:
                    key.encrypt(
                        data, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, AAD)
                    )

        results = []
        for _ in range(rounds):
            workers = [
                threading.Thread(target=work, args=(keys[i % len(keys)],)) for i in range(threads)
            ]
            start = time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            results.append(per_thread * threads / (time.perf_counter() - start))
        for s in sessions:
            s.close()
        return statistics.median(results)

    return {
        "1 thread, 1 session": threaded(1, False),
        "2 threads, 1 shared session": threaded(2, False),
        "2 threads, a session each (pool)": threaded(2, True),
        "4 threads, a session each (pool)": threaded(4, True),
    }


# --- 4. KMS Encrypt / Decrypt -------------------------------------------------------------------
def bench_service(
    roots: dict[str, Any], base: Path, rounds: int, n: int
) -> dict[str, dict[str, float]]:
    from openkms.clock import SystemClock
    from openkms.rootoftrust.rotate import DualRoot
    from openkms.service import encryption, keys
    from openkms.service.context import Principal, RequestContext
    from openkms.service.runtime import Runtime, RuntimeSettings
    from openkms.storage.records import AccountRecord
    from openkms.storage.sqlite import SqliteStorage

    account = "111122223333"
    principal = Principal(account, f"arn:aws:iam::{account}:root", "root", "AKIABENCH", account)

    def ctx(op: str) -> RequestContext:
        return RequestContext(principal, "us-east-1", str(uuid.uuid4()), time.time(), op)

    out: dict[str, dict[str, float]] = {}
    for name, root in roots.items():
        storage = SqliteStorage(base / f"{name}.db")
        storage.put_account(AccountRecord(account, time.time()))
        for cached in (True, False):
            settings = RuntimeSettings(material_cache_entries=10_000 if cached else 0)
            rt = Runtime(storage, DualRoot(root), SystemClock(), settings=settings)
            key_id = keys.create_key(rt, ctx("CreateKey"), {})["KeyMetadata"]["KeyId"]
            req = {"KeyId": key_id, "Plaintext": b"x" * 64}
            blob = encryption.encrypt(rt, ctx("Encrypt"), req)["CiphertextBlob"]
            label = f"{name}, {'cache' if cached else 'no cache'}"
            out[label] = {
                "encrypt_per_s": median_rate(
                    rounds, n, lambda rt=rt, req=req: encryption.encrypt(rt, ctx("Encrypt"), req)
                ),
                "decrypt_per_s": median_rate(
                    rounds,
                    n,
                    lambda rt=rt, b=blob: encryption.decrypt(
                        rt, ctx("Decrypt"), {"CiphertextBlob": b}
                    ),
                ),
            }
        storage.close()
    return out


def table(title: str, rows: dict[str, Any]) -> str:
    lines = [f"\n{title}"]
    for name, figures in rows.items():
        if isinstance(figures, dict):
            cells = "  ".join(f"{k} {v:>10,.0f}" for k, v in figures.items())
        elif isinstance(figures, float):
            cells = f"{figures:>10,.0f} ops/s"
        else:
            cells = str(figures)
        lines.append(f"  {name:<36} {cells}")
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) == 7 and sys.argv[1] == "--pykcs11":
        _, _, module, token, label, rounds, n = sys.argv
        return pykcs11_child(module, token, label, int(rounds), int(n))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=3000, help="operations per measurement (3000)")
    parser.add_argument("--quick", action="store_true", help="1 round of 500 operations")
    args = parser.parse_args()
    rounds, n = (1, 500) if args.quick else (args.rounds, args.ops)

    module = softhsm_module()
    base = Path(tempfile.mkdtemp(prefix="openkms-hsm-bench-"))
    try:
        token, pin = make_token(base)
        from openkms.rootoftrust.memory import MemoryRoot
        from openkms.rootoftrust.pkcs11 import Pkcs11Root

        hsm = Pkcs11Root(module, token, "bench-root", pin, create=True)
        roots = {"file (AES-GCM in process)": MemoryRoot(), "pkcs11 (SoftHSM2)": hsm}
        results: dict[str, Any] = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "rounds": rounds,
            "ops": n,
        }
        log("raw roots…")
        results["roots"] = bench_roots(roots, rounds, n)
        log("bindings…")
        results["bindings"] = bench_bindings(module, token, pin, "bench-root", rounds, n)
        log("sessions…")
        results["sessions"] = bench_sessions(module, token, "bench-root", rounds, n)
        log("KMS Encrypt/Decrypt…")
        results["service"] = bench_service(
            {"file": roots["file (AES-GCM in process)"], "pkcs11": hsm},
            base,
            rounds,
            max(n // 3, 200),
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)

    print(table("Root of trust, raw (ops/s)", results["roots"]))
    print(table("PKCS#11 bindings, CKM_AES_GCM on SoftHSM2 (ops/s)", results["bindings"]))
    print(table("python-pkcs11 sessions, encrypt under the module lock", results["sessions"]))
    print(table("KMS operations in process, SQLite storage (ops/s)", results["service"]))
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-hsm.json")
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    log(f"\nwritten to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
