#!/usr/bin/env python3
"""The calibration server of ``benchmarks/run``: a trivial ASGI app on openkms's server stack.

Same uvicorn, httptools, uvloop, response-coalescing protocol class and listening socket per
worker as ``openkms serve``; the application reads the body and answers a fixed 256-byte JSON
document (about the size of an Encrypt response). What openkms costs per request beyond this is
openkms; what this costs is the machine and the server stack.

    trivial_server.py --port 8080 --workers 2
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

# uvicorn's workers import the app by name ("trivial_server:app"), in fresh processes that run
# this module first (multiprocessing's spawn): so the directory goes on the path here.
sys.path.insert(0, str(Path(__file__).resolve().parent))

BODY = b'{"CiphertextBlob":"' + b"A" * 200 + b'","KeyId":"trivial","Algo":"X"}'
BODY = BODY + b" " * (256 - len(BODY))
HEADERS = [
    (b"content-type", b"application/x-amz-json-1.1"),
    (b"content-length", str(len(BODY)).encode()),
    (b"x-amzn-requestid", b"00000000-0000-4000-8000-000000000000"),
]
START = {"type": "http.response.start", "status": 200, "headers": HEADERS}
MESSAGE = {"type": "http.response.body", "body": BODY}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                if event["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        return
    while (await receive()).get("more_body"):
        pass
    await send(START)
    await send(MESSAGE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from openkms.http import listener
    from openkms.http.protocol import CoalescingHttpToolsProtocol

    config = uvicorn.Config(
        "trivial_server:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http=CoalescingHttpToolsProtocol,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        lifespan="off",
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
    )
    if args.workers <= 1:
        server = uvicorn.Server(config)
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        return 0
    sock = (
        listener.reserve(args.host, args.port)
        if listener.balancing_supported()
        else config.bind_socket()
    )
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[sock]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
