#!/usr/bin/env python3
"""How fast is the console's key list with many keys?

Populates N keys (default 100,000) through the real CreateKey code path in one transaction
(every key a description, every 100th an alias, every 1,000th a tag), starts a server, signs in
to the console with the account's key pair and times the key list pages a person would load:
the first page, a page deep in the list, an exact alias, and the searches and filters (through
the key search extension, OpenKMS.SearchKeys) and the overview (OpenKMS.CountKeysByState).
Prints one JSON object."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

if sys.prefix == sys.base_prefix:  # re-run inside the repository's virtualenv
    venv = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"
    if venv.exists():
        os.execv(str(venv), [str(venv), *sys.argv])

from openkms.clock import SystemClock
from openkms.config import Settings
from openkms.http.wiring import build_runtime
from openkms.service import aliases, keys
from openkms.service.accounts import create_account
from openkms.service.common import encode_marker
from openkms.service.context import Principal, RequestContext

OPENKMS = [sys.executable, "-m", "openkms.cli.main"]


def populate(data_dir: Path, count: int) -> tuple[dict[str, str], list[str]]:
    wired = build_runtime(Settings(data_dir=str(data_dir)).validate())
    rt = wired.runtime
    issued = create_account(rt.storage, wired.root, SystemClock())
    principal = Principal(
        issued.account_id, issued.principal_arn, "root", issued.access_key_id, issued.account_id
    )
    ctx = RequestContext(principal, "us-east-1", "populate", time.time(), "CreateKey")
    ids: list[str] = []
    with rt.storage.transaction():
        for i in range(count):
            params: dict[str, object] = {"Description": f"bulk key number {i}"}
            if i % 1000 == 999:
                params["Tags"] = [{"TagKey": "team", "TagValue": f"needle-{i}"}]
            key_id = keys.create_key(rt, ctx, params)["KeyMetadata"]["KeyId"]
            ids.append(key_id)
            if i % 100 == 0:
                aliases.create_alias(
                    rt, ctx, {"AliasName": f"alias/bulk-{i}", "TargetKeyId": key_id}
                )
    wired.storage.close()
    creds = {"AccessKeyId": issued.access_key_id, "SecretAccessKey": issued.secret_access_key}
    return creds, ids


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Console:
    def __init__(self, port: int) -> None:
        self.port = port
        self.cookie = ""

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"Origin": f"http://127.0.0.1:{self.port}", "Sec-Fetch-Site": "same-origin"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        body = None
        if form:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode()
        for value in resp.headers.get_all("set-cookie") or []:
            self.cookie = value.split(";", 1)[0]
        conn.close()
        return text

    def timed(self, path: str, rounds: int = 3) -> dict[str, object]:
        best = float("inf")
        text = ""
        for _ in range(rounds):
            started = time.perf_counter()
            text = self.request("GET", path)
            best = min(best, time.perf_counter() - started)
        rows = len(re.findall(r'<td class="mono"><a href="/console/keys/', text))
        windows = re.search(r"(\d+) search requests?", text)
        counted = re.search(r"All (\d+) keys of this Region", text) or re.search(
            r"(\d+) keys counted before", text
        )
        return {
            "path": path,
            "best_ms": round(best * 1000, 1),
            "rows": rows,
            "search_requests": int(windows.group(1)) if windows else None,
            "states_counted": int(counted.group(1)) if counted else None,
            "more": 'id="next"' in text,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        started = time.perf_counter()
        creds, ids = populate(data_dir, args.keys)
        populate_s = time.perf_counter() - started
        port = free_port()
        proc = subprocess.Popen(
            [*OPENKMS, "serve", "--data-dir", str(data_dir), "--port", str(port),
             "--no-rate-limits", "--workers", "1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.startswith("OPENKMS_")},
        )  # fmt: skip
        try:
            console = Console(port)
            while True:
                try:
                    console.request("GET", "/healthz")
                    break
                except OSError:
                    time.sleep(0.05)
            console.request(
                "POST",
                "/console/signin",
                {"access_key_id": creds["AccessKeyId"],
                 "secret_access_key": creds["SecretAccessKey"]},
            )  # fmt: skip
            deep = urllib.parse.urlencode({"marker": encode_marker(sorted(ids)[len(ids) // 2])})
            rows = [
                console.timed("/console/keys"),
                console.timed("/console/keys?" + deep),
                console.timed(f"/console/keys?q=alias/bulk-{(args.keys // 200) * 100}"),
                console.timed("/console/keys?q=" + ids[len(ids) // 3]),
                console.timed("/console/keys?spec=SYMMETRIC_DEFAULT"),
                console.timed("/console/keys?q=bulk+key+number+7"),
                console.timed("/console/keys?q=needle"),
                console.timed("/console/keys?q=needle-99999"),
                console.timed("/console/keys?state=Disabled"),
                console.timed("/console/keys?q=%25"),
                console.timed("/console/"),
                console.timed("/console/overview?all=1", rounds=1),
            ]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps({"keys": args.keys, "populate_s": round(populate_s, 1), "pages": rows},
                     indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
