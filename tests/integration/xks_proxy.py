"""A small External Key Store (XKS) proxy for the tests: AWS's XKS proxy API v1 over HTTPS on
loopback, checking every request's SigV4 signature (service ``kms-xks-proxy``) with openkms's
own verifier, holding its AES-256 external keys in memory.

    proxy = XksProxy.start(tmp_path)          # https://127.x.y.z (port 443 when we may bind it)
    proxy.add_key("ext-key-1")
    ... proxy.calls (operation names), proxy.down = True (answers nothing), proxy.keys ...
    proxy.stop()
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkms.auth.sigv4 import SignedRequest, SigV4Verifier
from openkms.clock import SystemClock
from openkms.errors import OpenKMSError
from openkms.tlsdev import make_dev_certs

SERVICE = "kms-xks-proxy"
URI_PATH = "/example/kms/xks/v1"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def new_access_key_id() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(20))


def new_secret() -> str:
    return base64.b64encode(os.urandom(33)).decode()  # 44 characters


@dataclass
class ExternalKey:
    material: bytes
    spec: str = "AES_256"
    usage: tuple[str, ...] = ("ENCRYPT", "DECRYPT")
    status: str = "ENABLED"


@dataclass
class XksProxy:
    host: str
    port: int
    ca_file: Path
    access_key_id: str
    secret: str = field(repr=False)
    keys: dict[str, ExternalKey] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    # The requestMetadata of each key operation, in order.
    metadata: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False
    strict_path: bool = False  # serve URI_PATH only (else any .../kms/xks/v1)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"https://{self.host}" + ("" if self.port == 443 else f":{self.port}")

    @property
    def credential(self) -> dict[str, str]:
        return {"AccessKeyId": self.access_key_id, "RawSecretAccessKey": self.secret}

    def add_key(self, key_id: str, **kwargs: Any) -> ExternalKey:
        key = ExternalKey(AESGCM.generate_key(256), **kwargs)
        self.keys[key_id] = key
        return key

    @classmethod
    def start(cls, cert_dir: Path, *, port: int | None = None) -> XksProxy:
        """On a random 127.x.y.z address: port 443 (AWS's XksProxyUriEndpoint has no port) when
        ``port`` is None, else the port given (0: any)."""
        host = f"127.{secrets.randbelow(250) + 2}.{secrets.randbelow(250) + 2}." + str(
            secrets.randbelow(250) + 2
        )
        certs = make_dev_certs(cert_dir, [host])
        proxy = cls(
            host, 443 if port is None else port, certs.ca_cert, new_access_key_id(), new_secret()
        )
        server = ThreadingHTTPServer((host, proxy.port), _handler_for(proxy))
        proxy.port = server.server_address[1]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certs.server_cert, certs.server_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.daemon_threads = True
        proxy._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return proxy

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    # -- the API --------------------------------------------------------------------------------
    def verifier(self) -> SigV4Verifier:
        secrets_by_id = {self.access_key_id: self.secret.encode()}
        return SigV4Verifier(secrets_by_id.get, SystemClock())

    def handle(self, path: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, Any]:
        try:
            self.verifier().verify(
                SignedRequest("POST", path, "", headers, body), expected_service=SERVICE
            )
        except OpenKMSError as exc:
            return 401, _error("AuthenticationFailedException", exc.message)
        marker = "/kms/xks/v1/"
        if marker not in path or (self.strict_path and not path.startswith(URI_PATH + "/")):
            return 404, _error("InvalidUriPathException", f"no such path {path}")
        try:
            doc = json.loads(body)
        except ValueError:
            return 400, _error("ValidationException", "the body is not JSON")
        rest = path.split(marker, 1)[1].split("/")
        if rest == ["health"]:
            self.calls.append("health")
            return 200, {
                "xksProxyFleetSize": 1,
                "xksProxyVendor": "openkms tests",
                "xksProxyModel": "xks_proxy.py",
                "ekmVendor": "in memory",
                "ekmFleetDetails": [{"id": "ekm-1", "model": "dict", "healthStatus": "ACTIVE"}],
            }
        if len(rest) != 3 or rest[0] != "keys":
            return 404, _error("InvalidUriPathException", f"no such path {path}")
        key_id, operation = rest[1], rest[2]
        self.calls.append(operation)
        meta = doc.get("requestMetadata") if isinstance(doc, dict) else None
        self.metadata.append(dict(meta) if isinstance(meta, dict) else {})
        key = self.keys.get(key_id)
        if key is None:
            return 404, _error("KeyNotFoundException", f"no key {key_id}")
        if operation == "metadata":
            return 200, {"keySpec": key.spec, "keyUsage": list(key.usage), "keyStatus": key.status}
        if key.status != "ENABLED":
            return 400, _error("InvalidStateException", f"key {key_id} is {key.status}")
        aad = base64.b64decode(doc.get("additionalAuthenticatedData", ""))
        if operation == "encrypt":
            iv = os.urandom(12)
            sealed = AESGCM(key.material).encrypt(iv, base64.b64decode(doc["plaintext"]), aad)
            return 200, {
                "ciphertext": base64.b64encode(sealed[:-16]).decode(),
                "initializationVector": base64.b64encode(iv).decode(),
                "authenticationTag": base64.b64encode(sealed[-16:]).decode(),
            }
        if operation == "decrypt":
            data = base64.b64decode(doc["ciphertext"]) + base64.b64decode(doc["authenticationTag"])
            try:
                plain = AESGCM(key.material).decrypt(
                    base64.b64decode(doc["initializationVector"]), data, aad
                )
            except InvalidTag:
                return 400, _error("InvalidCiphertextException", "the ciphertext is not valid")
            return 200, {"plaintext": base64.b64encode(plain).decode()}
        return 404, _error("InvalidUriPathException", f"no such operation {operation}")


def _error(name: str, message: str) -> dict[str, str]:
    return {"errorName": name, "errorMessage": message}


def _handler_for(proxy: XksProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if proxy.down:
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            status, doc = proxy.handle(self.path, list(self.headers.items()), body)
            out = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    return Handler
