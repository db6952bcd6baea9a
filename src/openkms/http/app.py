"""The ASGI application: request id, body limit, SigV4 → Principal, dispatch, health.

``create_app(settings)`` is where everything is built; ``app_from_env`` is the factory each
uvicorn worker process calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from openkms.audit import AuditSink, AuditWriteError, build_record, is_read_only
from openkms.audit.events import CRYPTOGRAPHIC_OPERATIONS, EVENT_SOURCE, event_id, record_parts
from openkms.audit.throttle import FailedAuthGate
from openkms.auth.sigv4 import SigV4Verifier
from openkms.config import Settings, settings_from_env
from openkms.errors import (
    AccessDeniedException,
    InvalidSignatureException,
    KMSInternalException,
    OpenKMSError,
    RequestEntityTooLarge,
    SerializationException,
    ThrottlingException,
    UnknownOperationException,
    UnsupportedOperationException,
)
from openkms.fips import fips_refusal
from openkms.http.iam_audit import EVENT_SOURCES, iam_read_only, redact_query
from openkms.http.identity import Identities
from openkms.http.limits import check_caller_strings
from openkms.http.localonly import cross_site_refusal, reset_refusal
from openkms.http.metrics import Metrics
from openkms.http.ratelimit import CRYPTO_OPERATIONS, RateLimiter, limiter_from_settings
from openkms.http.wiring import Wired, build_runtime, open_audit_sink
from openkms.logsetup import request_id_var
from openkms.protocol import codec
from openkms.protocol.errors import error_body
from openkms.protocol.extensions import EXTENSIONS
from openkms.protocol.model import TARGET_PREFIX
from openkms.protocol.operations import OPERATIONS, READ_ONLY, handler_for
from openkms.protocol.validation import validate_input
from openkms.rootoftrust.shamir import UNSEAL_PATH, handle_unseal
from openkms.scheduler import run_once
from openkms.service.accounts import ensure_account
from openkms.service.caches import TtlCache
from openkms.service.context import RequestContext
from openkms.service.key_store_backends import CURRENT_REQUEST
from openkms.storage.base import StorageError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("openkms.http")

_JSON_TYPE = b"application/x-amz-json-1.1"
_TARGET_PREFIX = TARGET_PREFIX + "."
_SERVICES = frozenset({"kms", "iam", "sts", "secretsmanager"})
# Where the web console answers (openkms.console.app.PREFIX, which a test keeps equal).
CONSOLE_PREFIX = "/console"
_CONSOLE_SUBTREE = CONSOLE_PREFIX + "/"
# Requests that run on a thread beside the event loop, one at a time, so that the loop keeps
# serving everyone else (/healthz, cached cryptographic operations) meanwhile:
# * operations that may generate an RSA key (over a second for RSA_4096; pyca releases the GIL
#   while it works);
# * every other operation that writes (control-plane, IAM, STS): a commit waits for fsync,
#   hundreds of milliseconds on a busy disk. These run at AWS's control-plane rates (5-50/s),
#   so the hand-over costs nothing that matters. Reads and cryptographic operations (whose
#   usage and audit records are written by background threads) stay on the loop.
_KEYGEN_OPERATIONS = frozenset(
    {
        "CreateKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GetParametersForImport",
        "ReplicateKey",
    }
)
# The openkms extensions (key search) read up to a window of keys, tens of milliseconds: off the
# loop too.
_OFF_LOOP = (
    _KEYGEN_OPERATIONS
    | (frozenset(OPERATIONS) - READ_ONLY - CRYPTOGRAPHIC_OPERATIONS)
    | frozenset(EXTENSIONS)
)
# The scope key under which _authenticate leaves the credential scope's service it verified.
_SCOPE_SERVICE = "openkms.service"
# ... and the (first) X-Amz-Target header it read.
_SCOPE_TARGET = "openkms.target"
# The operation direct_eligible found (its metrics label in answer_direct).
_SCOPE_OPERATION = "openkms.operation"
# Header names as received -> their lower-cased text (the same dozen names on every request).
_HEADER_NAMES: dict[bytes, str] = {}


class OpenKMSApp:
    def __init__(self, wired: Wired) -> None:
        self.wired = wired
        self.settings = wired.settings
        self.runtime = wired.runtime
        self.identities = Identities(
            wired.storage,
            wired.root,
            self.settings.partition,
            self.settings.cache_ttl_seconds,
            clock=self.runtime.clock,
        )
        # KMS, IAM and STS follow the rules of every AWS service but S3: the x-amz-* headers
        # (X-Amz-Target above all) and Content-Type must be signed, the payload hash is the
        # body's own, and the credential scope names a Region of the partition.
        self.verifier = SigV4Verifier(
            self.identities.secret_for,
            self.runtime.clock,
            max_skew_seconds=self.settings.max_clock_skew_seconds,
            allow_unsigned_payload=False,
            hash_body=True,
            must_sign_prefixes=("x-amz-",),
            must_sign=() if self.settings.allow_unsigned_content_type else ("content-type",),
            regions=self.settings.region_set(),
        )
        self._tasks: list[asyncio.Task[None]] = []
        # Secrets Manager's GetSecretValue cache (openkms.secretsmanager.read_cache), built on
        # first use: a Secrets Manager request, or the scheduler (whose rotations invalidate it).
        self._secrets_read_cache: Any = None
        # Built with the first Secrets Manager request (_make_secrets_deps).
        self._secrets_deps: Any = None
        self._secrets_functions: tuple[Any, Any, Any] = (None, None, None)
        self._slow = ThreadPoolExecutor(max_workers=1, thread_name_prefix="openkms-off-loop")
        # The key search extensions on a thread of their own: a request may authorize up to
        # 10,000 keys (about half a second), and a tenant's searches must queue behind each
        # other, not delay everyone's writes on ``_slow``.
        self._search = ThreadPoolExecutor(max_workers=1, thread_name_prefix="openkms-search")
        self.audit: AuditSink | None = open_audit_sink(self.settings)
        self.failed_auth = FailedAuthGate(
            rate=self.settings.audit_failed_auth_rate,
            total_rate=self.settings.audit_failed_auth_total_rate,
        )
        self.metrics: Metrics | None = None
        if self.settings.metrics_enabled:
            self.metrics = Metrics(self.settings.metrics_multiproc_path)
            rt = self.runtime
            for name, cache in (
                ("keys", rt.key_cache),
                ("aliases", rt.alias_cache),
                ("material", rt.material_cache),
                ("grants", rt.grant_cache),
            ):
                self.metrics.register_cache(name, _cache_stats(cache))
        self.limiter: RateLimiter | None = limiter_from_settings(self.settings)
        # Development mode answers only requests addressed to a loopback name, from no foreign
        # web page: a page the developer visits can neither rebind a name to 127.0.0.1 nor
        # post across sites (openkms.http.localonly).
        self._local_only = self.settings.dev or self.settings.accept_any_credentials
        self._direct = self.settings.direct_api
        if self.settings.accept_any_credentials:
            ensure_account(wired.storage, self.runtime.clock, self.settings.account_id)
        # The web console (openkms.console.server attaches it): requests under /console go to
        # it from here, so that an API request does not pass through a second, interpreted
        # ASGI layer on its way in (a coroutine frame and an await per request).
        self.console: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None

    # -- ASGI entry ----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # An HTTP request is handled in this one frame, not in methods of their own: each
        # compiled coroutine (its frame object, each await passing through it) costs ~1 % of a
        # request's CPU.
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            return
        method = scope["method"]
        path = scope["path"]
        console = self.console
        if console is not None and (path == CONSOLE_PREFIX or path.startswith(_CONSOLE_SUBTREE)):
            await console(scope, receive, send)
            return
        # Unique, not secret: the same cheap version-4 UUID the audit log uses for event ids.
        # The context variable itself rather than logsetup's functions around it: those are
        # Python-level calls, twice per request.
        request_id = event_id()
        token = request_id_var.set(request_id)
        try:
            if self._local_only:
                refusal = cross_site_refusal(scope)
                if refusal is not None:
                    await self._send_error(send, AccessDeniedException(refusal), request_id)
                    return
            if method == "GET" and path in ("/healthz", "/readyz", "/"):
                await self._health(path, request_id, send)
                return
            if method == "GET" and path == "/metrics" and self._metrics_here():
                assert self.metrics is not None
                metrics_type, metrics_body = self.metrics.render()
                await self._send(send, 200, metrics_body, request_id, None, metrics_type.encode())
                return
            started = time.perf_counter()
            # The usual request's whole body arrives with its head, in the first message.
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away (or was cut off) before its body arrived
            body: bytes | None = message.get("body", b"")
            try:
                assert body is not None
                limit = self.settings.max_body_bytes
                if len(body) > limit:
                    raise _too_large(limit)
                if message.get("more_body", False):
                    body = await self._read_rest(scope, receive, body)
            except OpenKMSError as exc:
                await self._send_error(send, exc, request_id)
                return
            if body is None:
                return  # the client went away (or was cut off) before its body arrived
            if method == "POST" and path == "/_openkms/reset":
                await self._reset(scope, body, request_id, send)
                return
            if method == "POST" and path == UNSEAL_PATH:
                unseal_status, doc = handle_unseal(self.wired.root, body)
                await self._send(send, unseal_status, orjson.dumps(doc), request_id, None)
                return
            # The headers are walked once for the operation: the thread choice and the metrics
            # label both read it.
            target_operation = _target_operation(scope)
            if _off_loop(scope, target_operation):
                context = contextvars.copy_context()  # the request id the logs carry
                (
                    status,
                    payload,
                    error_type,
                    content_type,
                ) = await asyncio.get_running_loop().run_in_executor(
                    self._search if target_operation in EXTENSIONS else self._slow,
                    context.run,
                    self._dispatch,
                    scope,
                    body,
                    request_id,
                )
            else:
                status, payload, error_type, content_type = self._dispatch(scope, body, request_id)
            # _send's two messages, sent from this frame.
            await send(_response_start(status, payload, request_id, error_type, content_type))
            await send({"type": "http.response.body", "body": payload})
            metrics = self.metrics
            if metrics is not None:
                operation = target_operation or _scope_service(scope) or "other"
                # The compiled tally itself, not Metrics.observe (an interpreted call).
                seconds = time.perf_counter() - started
                if metrics.tally.observe(operation, error_type or "ok", seconds):
                    metrics.flush()
        finally:
            request_id_var.reset(token)

    # -- API requests answered from the HTTP protocol (openkms.http.protocol) --------------------
    def direct_eligible(self, scope: Scope) -> bool:
        """Whether the protocol may answer this request with ``answer_direct`` once its body is
        complete, rather than through the ASGI cycle: an API request (``POST /`` is all the
        protocol offers) whose body length is declared and within the limit, answered on the
        event loop, with no local-only check to make. Anything else (a chunked or oversized
        body, an operation dispatched off the loop) takes ``__call__``, which knows how to."""
        if not self._direct or self._local_only:
            return False
        # Typed, so that the compiled loop walks the list and compares bytes natively (uvicorn's
        # httptools protocol gives (name, value) tuples of bytes, names lower-cased).
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        length = -1
        target = b""
        for name, value in headers:
            if name == b"content-length":
                if length >= 0 or not value.isdigit() or len(value) > 12:
                    return False  # repeated or not a plain number: let __call__ answer it
                length = int(value)
            elif name == b"transfer-encoding":
                return False
            elif name == b"x-amz-target" and not target:
                target = value  # the first, as _target_operation reads it
        if not 0 <= length <= self.settings.max_body_bytes:
            return False
        text = target.decode("latin-1")
        if text.startswith(_TARGET_PREFIX):
            operation = text[len(_TARGET_PREFIX) :]
        else:
            operation = text if text in EXTENSIONS else ""
        scope[_SCOPE_OPERATION] = operation  # answer_direct's metrics label
        return not _off_loop(scope, operation)

    def answer_direct(
        self,
        scope: Scope,
        body: bytes,
        default_headers: list[tuple[bytes, bytes]],
        status_lines: dict[int, bytes],
    ) -> bytes:
        """The whole HTTP response to a request ``direct_eligible`` accepted: what ``__call__``
        would have sent through uvicorn's cycle (its status line and default headers, then the
        same headers and payload), with the same request id, audit record and metrics."""
        started = time.perf_counter()
        request_id = event_id()
        token = request_id_var.set(request_id)
        try:
            status, payload, error_type, content_type = self._dispatch(scope, body, request_id)
        finally:
            request_id_var.reset(token)
        parts = [status_lines[status]]
        for name, value in default_headers:
            parts += (name, b": ", value, b"\r\n")
        parts += (
            b"content-type: ",
            content_type,
            b"\r\ncontent-length: ",
            str(len(payload)).encode(),
            b"\r\nx-amzn-requestid: ",
            request_id.encode(),
            b"\r\n",
        )
        if error_type is not None:
            parts += (b"x-amzn-errortype: ", error_type.encode(), b"\r\n")
        parts += (b"\r\n", payload)
        metrics = self.metrics
        if metrics is not None:
            operation = scope.get(_SCOPE_OPERATION) or _scope_service(scope) or "other"
            seconds = time.perf_counter() - started
            if metrics.tally.observe(operation, error_type or "ok", seconds):
                metrics.flush()
        return b"".join(parts)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._start_background()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._stop_background()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- background work ------------------------------------------------------------------------
    def _start_background(self) -> None:
        self._run_purge()
        loop = asyncio.get_running_loop()
        # In a thread: a commit waits for the disk, and the event loop must not wait with it.
        self._tasks.append(
            loop.create_task(
                self._every(self.settings.usage_flush_seconds, self._flush_usage, in_thread=True)
            )
        )
        self._tasks.append(
            loop.create_task(self._every(self.settings.scheduler_interval_seconds, self._run_purge))
        )
        if self.audit is not None:
            self._tasks.append(
                loop.create_task(
                    self._every(self.settings.audit_summary_seconds, self._audit_summary)
                )
            )

    async def _stop_background(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._slow.shutdown(wait=True)
        self._search.shutdown(wait=True)
        self._flush_usage()
        if self.audit is not None:
            self._audit_summary()
            self.audit.close()
        if self.metrics is not None:
            self.metrics.close()

    async def _every(
        self, seconds: float, job: Callable[[], None], *, in_thread: bool = False
    ) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                if in_thread:
                    await asyncio.to_thread(job)
                else:
                    job()
            except Exception:
                # One failed run must not end the loop: the next one may succeed.
                log.exception("background job %s failed; it runs again in %.2f s", job, seconds)

    def _audit_summary(self) -> None:
        """The ``suppressed`` notice counting the failed-authentication records not written."""
        if self.audit is None:
            return
        notice = self.failed_auth.summary()
        if notice is None:
            return
        try:
            self.audit.write(notice)
        except AuditWriteError:
            log.error("audit: the summary of suppressed failed-authentication records was lost")

    def _flush_usage(self) -> None:
        if self.metrics is not None:
            self.metrics.flush()
        try:
            self.runtime.flush_usage()
        except StorageError:
            log.warning("could not record key usage; will retry")

    def _run_purge(self) -> None:
        try:
            report = run_once(
                self.runtime,
                self.runtime.clock.now(),
                secrets_audit=None if self.audit is None else self.audit.write,
                secrets_read_cache=self._secrets_cache(),
            )
        except StorageError:
            log.warning("scheduler: storage unavailable; will retry")
            if self.metrics is not None:
                self.metrics.scheduler_run(False)
            return
        if self.metrics is not None:
            self.metrics.scheduler_run(
                True,
                deleted=len(report.deleted),
                rotated=len(report.rotated),
                expired=len(report.expired),
            )
        for arn in report.deleted:
            log.info("deleted key %s at the end of its waiting period", arn)
        for arn in report.rotated:
            log.info("rotated key %s on its automatic schedule", arn)
        for arn in report.expired:
            log.info("imported key material of %s expired and was deleted", arn)
        for arn in report.secrets_deleted:
            log.info("deleted secret %s at the end of its recovery window", arn)

    # -- HTTP -----------------------------------------------------------------------------------
    def _metrics_here(self) -> bool:
        return self.metrics is not None and not self.settings.metrics_port

    async def _read_rest(self, scope: Scope, receive: Receive, body: bytes) -> bytes | None:
        """The request body after its first part ``body``; None when the client disconnected
        before it was complete."""
        limit = self.settings.max_body_bytes
        # More to come: a declared length over the limit is refused before any more of it is
        # read. (What has arrived was buffered before this read either way: uvicorn stops
        # reading a connection once 64 KiB of body wait unread.)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    if int(value) > limit:
                        raise _too_large(limit)
                except ValueError:
                    pass
        chunks = [body]
        size = len(body)
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    def _dispatch(
        self, scope: Scope, body: bytes, request_id: str
    ) -> tuple[int, bytes, str | None, bytes]:
        """(status, payload, error type, content type)."""
        ctx: RequestContext | None = None
        params: dict[str, Any] | None = None
        result: dict[str, Any] | None = None
        error: OpenKMSError | None = None
        try:
            ctx, service, operation = self._authenticate(scope, body, request_id)
            if service == "secretsmanager":
                return self._secrets_api(ctx, scope, body)
            if service != "kms":
                return self._query_api(service, ctx, scope, body)
            extension = EXTENSIONS.get(operation)
            if extension is not None:
                # Not in botocore's model: the extension validates its own members.
                decoded = codec.decode_body(body)
                if not isinstance(decoded, dict):
                    raise SerializationException(
                        "Start of structure or map found where not expected."
                    )
                params = decoded
                self._gate(ctx, operation, params)
                result = extension(self.runtime, ctx, params)
            else:
                # The table first: handler_for is an interpreted call, and it only adds the
                # answers for operations without a handler.
                handler = OPERATIONS.get(operation) or handler_for(operation)
                params = validate_input(operation, codec.decode_body(body))
                check_caller_strings(params, self.settings.max_encryption_context_chars)
                self._gate(ctx, operation, params)
                # The request the custom key stores' backends describe (XKS requestMetadata).
                token = CURRENT_REQUEST.set(ctx)
                try:
                    result = handler(self.runtime, ctx, params)
                finally:
                    CURRENT_REQUEST.reset(token)
        except OpenKMSError as exc:
            error = exc
        except StorageError:
            log.exception("storage failure (request %s)", request_id)
            error = KMSInternalException("The service could not reach its storage; retry.")
        except Exception:
            log.exception("unexpected failure (request %s)", request_id)
            error = KMSInternalException("")
        query_service = _scope_service(scope)
        if ctx is None and query_service == "secretsmanager":
            return self._secrets_error(scope, request_id, error)
        if ctx is None and query_service in ("iam", "sts"):
            # Refused before IAM/STS dispatch (authentication): their XML, their codes.
            return self._query_error(query_service, scope, body, request_id, error)
        try:
            self._audit(scope, request_id, ctx, params, result, error)
        except AuditWriteError:
            self._audit_failed(request_id)
            error = KMSInternalException("The request could not be audited; retry.")
            result = None
        except Exception:
            # A record that cannot even be built: never answered unaudited (fail closed).
            log.exception("audit record could not be built (request %s)", request_id)
            self._audit_failed(request_id)
            error = KMSInternalException("The request could not be audited; retry.")
            result = None
        if error is not None or result is None:
            error = error or KMSInternalException("")
            return error.status, error_body(error), error.code, _JSON_TYPE
        return 200, codec.encode(result), None, _JSON_TYPE

    def _audit_failed(self, request_id: str) -> None:
        log.error("audit record could not be written; failing request %s", request_id)
        if self.metrics is not None:
            self.metrics.audit_write_failure()

    def _query_error(
        self,
        service: str,
        scope: Scope,
        body: bytes,
        request_id: str,
        error: OpenKMSError | None,
    ) -> tuple[int, bytes, str | None, bytes]:
        from openkms.iam.dispatch import render_error

        error = error or KMSInternalException("")
        status, payload, code = render_error(service, error, request_id)
        try:
            self._audit_unauthenticated(
                scope, request_id, error, code, service, lambda: _query_action(scope, body)
            )
        except AuditWriteError:
            self._audit_failed(request_id)
            status, payload, code = render_error(
                service,
                KMSInternalException("The request could not be audited; retry."),
                request_id,
            )
        return status, payload, code, b"text/xml"

    def _gate(self, ctx: RequestContext, operation: str, params: dict[str, Any]) -> None:
        """Rate limits and the FIPS-style mode, before the operation runs."""
        if self.limiter is None and not self.settings.fips_mode:
            return
        key_spec = None
        if "KeyId" in params and operation in CRYPTO_OPERATIONS:
            try:
                key_spec = self.runtime.resolve_key(ctx, params["KeyId"], record=False).key_spec
            except OpenKMSError:
                key_spec = None  # the handler answers with the right error
        if self.limiter is not None and not self.limiter.check(
            ctx.principal.account_id,
            operation,
            key_spec,
            params.get("KeyPairSpec"),
            region=ctx.region,
        ):
            if self.metrics is not None:
                self.metrics.throttled(operation)
            raise ThrottlingException("Rate exceeded")
        if self.settings.fips_mode:
            fips_gate(operation, params, key_spec)

    def _audit(
        self,
        scope: Scope,
        request_id: str,
        ctx: RequestContext | None,
        params: dict[str, Any] | None,
        result: dict[str, Any] | None,
        error: OpenKMSError | None,
    ) -> None:
        if self.audit is None:
            return
        if ctx is None:
            if error is not None:
                self._audit_unauthenticated(
                    scope, request_id, error, error.code, "kms", lambda: _target_operation(scope)
                )
            return
        # Serialized here, the start of the record once per caller, operation and second
        # (events.record_parts), and sealed from those bytes (chain.seal_parts).
        prefix, rest = record_parts(
            ctx=ctx,
            operation=ctx.operation,
            request_params=params,
            response=result,
            error_code=error.code if error is not None else None,
            error_message=error.message if error is not None else None,
            request_id=request_id,
            event_time=ctx.now,
            region=ctx.region,
            source_ip=ctx.source_ip,
            user_agent=ctx.user_agent,
            read_only=is_read_only(ctx.operation),
            resources=ctx.resources,
            account_id=ctx.principal.account_id,
        )
        self.audit.write_parts(prefix, rest)

    def _audit_unauthenticated(
        self,
        scope: Scope,
        request_id: str,
        error: OpenKMSError,
        code: str,
        service: str,
        operation_of: Callable[[], str],
    ) -> None:
        """A request refused before it had a principal: recorded in full only as often as
        ``FailedAuthGate`` admits (per source and overall), otherwise counted for the next
        ``suppressed`` summary. What the record copies from the request is bounded
        (``audit.events.FIELD_LIMITS``)."""
        if self.audit is None:
            return
        client = scope.get("client") or ("", 0)
        source_ip = str(client[0])
        if not self.failed_auth.admit(source_ip, time.monotonic(), code):
            return
        operation = operation_of()
        if not operation:
            operation = "Unknown"
        record = build_record(
            ctx=None,
            operation=operation,
            request_params=None,
            response=None,
            error_code=code,
            error_message=error.message,
            request_id=request_id,
            event_time=self.runtime.clock.now(),
            region="",
            source_ip=source_ip,
            user_agent=_header(scope, b"user-agent"),
            read_only=service == "kms" and is_read_only(operation),
            resources=(),
            account_id="",
            access_key_id=_credential_key_id(scope),
            event_source=EVENT_SOURCES.get(service, EVENT_SOURCE),
        )
        self.audit.write(record)

    def _audit_query(
        self,
        service: str,
        ctx: RequestContext,
        trace: dict[str, Any],
        error_code: str | None,
    ) -> None:
        """The record of an IAM or STS call (eventSource iam/sts.amazonaws.com), secrets
        left out (``openkms.http.iam_audit``)."""
        if self.audit is None:
            return
        action = str(trace.get("action") or ctx.operation or "Unknown")
        read_only = iam_read_only(action)
        response = None
        if error_code is None and not read_only:
            response = redact_query(service, trace.get("result"))
        record = build_record(
            ctx=ctx,
            operation=action,
            request_params=None,
            response=None,
            error_code=error_code,
            error_message=str(trace.get("message", "")) if error_code is not None else None,
            request_id=ctx.request_id,
            event_time=ctx.now,
            region=ctx.region,
            source_ip=ctx.source_ip,
            user_agent=ctx.user_agent,
            read_only=read_only,
            resources=(),
            account_id=ctx.principal.account_id,
            event_source=EVENT_SOURCES[service],
        )
        record["requestParameters"] = redact_query(service, trace.get("params"))
        record["responseElements"] = response
        self.audit.write(record)

    def _query_api(
        self, service: str, ctx: RequestContext, scope: Scope, body: bytes
    ) -> tuple[int, bytes, str | None, bytes]:
        """IAM and STS (AWS Query protocol, XML), served on the same port, and audited."""
        from openkms.iam.dispatch import handle_query, render_error
        from openkms.iam.handler import IamDeps

        deps = IamDeps(
            storage=self.runtime.storage,
            root=self.wired.root,
            clock=self.runtime.clock,
            partition=self.settings.partition,
            access=self.runtime.access,
        )
        query = scope.get("query_string", b"").decode("latin-1")
        trace: dict[str, Any] = {}
        status, payload, error_type = handle_query(deps, service, ctx, body, query, trace)
        try:
            self._audit_query(service, ctx, trace, error_type)
        except AuditWriteError:
            self._audit_failed(ctx.request_id)
            failure = KMSInternalException("The request could not be audited; retry.")
            status, payload, error_type = render_error(service, failure, ctx.request_id)
        return status, payload, error_type, b"text/xml"

    def _secrets_cache(self) -> Any:
        if self._secrets_read_cache is None:
            from openkms.secretsmanager.read_cache import ReadCache

            self._secrets_read_cache = ReadCache(self.settings.cache_ttl_seconds)
        return self._secrets_read_cache

    def _secrets_api(
        self, ctx: RequestContext, scope: Scope, body: bytes
    ) -> tuple[int, bytes, str | None, bytes]:
        """Secrets Manager (JSON 1.1, ``openkms.secretsmanager``), served on the same port and
        audited (eventSource secretsmanager.amazonaws.com)."""
        deps = self._secrets_deps
        if (
            deps is None
            or deps.storage is not self.runtime.storage
            or (deps.audit is None) != (self.audit is None)
        ):
            deps = self._secrets_deps = self._make_secrets_deps()
        secrets_record, handle, render_error = self._secrets_functions
        outcome = handle(deps, ctx, str(scope[_SCOPE_TARGET]), body)
        error = outcome.error
        if self.audit is not None:
            try:
                self.audit.write(
                    secrets_record(
                        ctx,
                        outcome.params,
                        outcome.result,
                        None if error is None else error.code,
                        None if error is None else error.message,
                    )
                )
            except Exception:  # never answered unaudited (fail closed)
                log.exception("audit record could not be written (request %s)", ctx.request_id)
                self._audit_failed(ctx.request_id)
                failure = KMSInternalException("The request could not be audited; retry.")
                status, payload, failed_code = render_error(failure)
                return status, payload, failed_code, _JSON_TYPE
        return outcome.status, outcome.payload, None if error is None else error.code, _JSON_TYPE

    def _make_secrets_deps(self) -> Any:
        """Secrets Manager's dependencies, built on its first request and kept (all of them
        live as long as the app) instead of three import statements and a dataclass per
        request. The audit writer is this app's sink, looked up at each write."""
        from openkms.secretsmanager.audit import secrets_record
        from openkms.secretsmanager.deps import SecretsDeps
        from openkms.secretsmanager.dispatch import handle, render_error

        self._secrets_functions = (secrets_record, handle, render_error)
        return SecretsDeps(
            storage=self.runtime.storage,
            runtime=self.runtime,
            clock=self.runtime.clock,
            partition=self.settings.partition,
            audit=None if self.audit is None else self._write_audit,
            read_cache=self._secrets_cache(),
        )

    def _write_audit(self, record: dict[str, Any]) -> None:
        if self.audit is not None:
            self.audit.write(record)

    def _secrets_error(
        self, scope: Scope, request_id: str, error: OpenKMSError | None
    ) -> tuple[int, bytes, str | None, bytes]:
        """A Secrets Manager request refused before dispatch (authentication), in its shape."""
        from openkms.secretsmanager.dispatch import operation_of, render_error

        status, payload, code = render_error(error or KMSInternalException(""))
        if error is not None:
            try:
                self._audit_unauthenticated(
                    scope,
                    request_id,
                    error,
                    code,
                    "secretsmanager",
                    lambda: operation_of(_header(scope, b"x-amz-target")),
                )
            except AuditWriteError:
                self._audit_failed(request_id)
                status, payload, code = render_error(
                    KMSInternalException("The request could not be audited; retry.")
                )
        return status, payload, code, _JSON_TYPE

    def _authenticate(
        self, scope: Scope, body: bytes, request_id: str
    ) -> tuple[RequestContext, str, str]:
        """(context, signing service, KMS operation or "")."""
        headers: dict[str, list[str]] = {}
        names = _HEADER_NAMES
        # Typed as uvicorn gives them, so that the compiled loop does not go through the
        # generic iterator and tuple protocols.
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        for raw_name, raw_value in raw_headers:
            name = names.get(raw_name)
            if name is None:
                name = raw_name.decode("latin-1").lower()
                if len(names) < 512:  # clients send the same few names; a flood stays bounded
                    names[raw_name] = name
            bucket = headers.get(name)
            if bucket is None:
                headers[name] = [raw_value.decode("latin-1")]
            else:
                bucket.append(raw_value.decode("latin-1"))
        target = headers.get("x-amz-target", ("",))[0]
        permissive = self.settings.accept_any_credentials
        verified = self.verifier.verify_grouped(
            scope["method"],
            scope.get("raw_path", b"").decode("latin-1") or scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            headers,
            body,
            check_signature=not permissive,
        )
        service = verified.service
        # What _scope_service would parse out of the Authorization header again.
        scope[_SCOPE_SERVICE] = service
        scope[_SCOPE_TARGET] = target  # and the target header _secrets_api would look up
        if service not in _SERVICES:
            raise InvalidSignatureException(
                "Credential should be scoped to correct service: 'kms'. "
            )
        if service == "kms" and not target.startswith(_TARGET_PREFIX) and target not in EXTENSIONS:
            raise UnknownOperationException("")
        if permissive:
            principal = self.identities.permissive_principal(
                self.settings.account_id, verified.access_key_id
            )
        else:
            principal = self.identities.principal_for(
                verified.access_key_id, verified.session_token
            )
        operation = ""
        if service == "kms":
            # An extension keeps its whole target as its name ("OpenKMS.SearchKeys").
            operation = target if target in EXTENSIONS else target[len(_TARGET_PREFIX) :]
            if operation in EXTENSIONS and operation != target:
                # "TrentService.OpenKMS.SearchKeys": an extension answers to its own name only.
                raise UnknownOperationException("")
        client = scope.get("client") or ("", 0)
        user_agent = headers.get("user-agent", ("",))[0]
        # RequestContext is compiled too (openkms.context): built by a direct native call.
        ctx = RequestContext(
            principal,
            verified.region,
            request_id,
            self.runtime.clock.now(),
            operation,
            str(client[0]),
            user_agent,
            scope.get("scheme") == "https",
        )
        return ctx, service, operation

    async def _reset(self, scope: Scope, body: bytes, request_id: str, send: Send) -> None:
        if not self.settings.accept_any_credentials:
            await self._send(send, 404, b'{"message":"Not Found"}', request_id, None)
            return
        refusal = reset_refusal(scope)
        if refusal is not None:
            await self._send_error(send, AccessDeniedException(refusal), request_id)
            return
        self.runtime.storage.reset_kms_data()
        self.runtime.key_cache.clear()
        self.runtime.alias_cache.clear()
        self.runtime.material_cache.clear()
        await self._send(send, 200, b'{"reset":true}', request_id, None)

    async def _health(self, path: str, request_id: str, send: Send) -> None:
        if path == "/readyz":
            try:
                self.runtime.storage.get_meta("root_key_check_value")
                healthy = getattr(self.runtime.root, "healthy", None)
                if healthy is not None and not healthy():
                    raise RuntimeError("the root of trust is unavailable")
            except Exception:  # any failure means not ready
                await self._send(send, 503, b'{"status":"unavailable"}', request_id, None)
                return
        payload = orjson.dumps({"status": "ok", "time": time.time()})
        await self._send(send, 200, payload, request_id, None)

    async def _send_error(self, send: Send, exc: OpenKMSError, request_id: str) -> None:
        await self._send(send, exc.status, error_body(exc), request_id, exc.code)

    async def _send(
        self,
        send: Send,
        status: int,
        payload: bytes,
        request_id: str,
        error_type: str | None,
        content_type: bytes = _JSON_TYPE,
    ) -> None:
        await send(_response_start(status, payload, request_id, error_type, content_type))
        await send({"type": "http.response.body", "body": payload})


def _response_start(
    status: int, payload: bytes, request_id: str, error_type: str | None, content_type: bytes
) -> dict[str, Any]:
    """The ``http.response.start`` message of an answer of ``payload``."""
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(payload)).encode()),
        (b"x-amzn-requestid", request_id.encode()),
    ]
    if error_type is not None:
        headers.append((b"x-amzn-errortype", error_type.encode()))
    return {"type": "http.response.start", "status": status, "headers": headers}


def _cache_stats(cache: TtlCache[Any, Any]) -> Callable[[], tuple[int, int]]:
    return lambda: (cache.hits, cache.misses)


def fips_gate(operation: str, params: dict[str, Any], key_spec: str | None) -> None:
    """Refuses key specs and algorithms outside FIPS 140-3's approved list."""
    checks: list[tuple[str | None, str | None]] = []
    if operation == "CreateKey":
        checks.append((params.get("KeySpec") or params.get("CustomerMasterKeySpec"), None))
    if operation in ("GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext"):
        checks.append((params.get("KeyPairSpec"), None))
    if operation == "GetParametersForImport":
        checks.append((params.get("WrappingKeySpec"), params.get("WrappingAlgorithm")))
    algorithm = (
        params.get("EncryptionAlgorithm")
        or params.get("SigningAlgorithm")
        or params.get("MacAlgorithm")
        or params.get("KeyAgreementAlgorithm")
        or params.get("SourceEncryptionAlgorithm")
    )
    if key_spec is not None or algorithm is not None:
        checks.append((key_spec, algorithm))
    if params.get("DestinationEncryptionAlgorithm") is not None:
        checks.append((None, params["DestinationEncryptionAlgorithm"]))
    for spec, alg in checks:
        refusal = fips_refusal(spec, alg)
        if refusal is not None:
            raise UnsupportedOperationException(refusal)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def _target_operation(scope: Scope) -> str:
    target = _header(scope, b"x-amz-target")
    if target.startswith(_TARGET_PREFIX):
        return target[len(_TARGET_PREFIX) :]
    return target if target in EXTENSIONS else ""


def _scope_service(scope: Scope) -> str:
    """The service named by the request's credential scope, for choosing the error format."""
    verified = scope.get(_SCOPE_SERVICE)
    if verified is not None:
        return str(verified)
    for name, value in scope["headers"]:
        if name == b"authorization":
            _, _, rest = value.partition(b"Credential=")
            parts = rest.split(b",", 1)[0].split(b"/")
            return parts[3].decode("latin-1") if len(parts) >= 5 else ""
    query = scope.get("query_string", b"")
    _, _, rest = query.partition(b"X-Amz-Credential=")
    parts = rest.split(b"&", 1)[0].replace(b"%2F", b"/").split(b"/")
    return parts[3].decode("latin-1") if len(parts) >= 5 else ""


def _off_loop(scope: Scope, operation: str) -> bool:
    """Whether the request is dispatched on the thread beside the event loop (``_OFF_LOOP``:
    key generation and writes; IAM and STS, named by the credential scope, all).
    ``operation``: ``_target_operation(scope)``."""
    if operation:
        return operation in _OFF_LOOP
    service = _scope_service(scope)
    if service == "secretsmanager":
        return _secrets_off_loop()(_header(scope, b"x-amz-target"))
    return service in ("iam", "sts")


# Secrets Manager's runs_off_loop, imported on first use (the http layer does not load the
# service at import) and kept: an import statement costs ~8 k instructions on every request.
_SECRETS_OFF_LOOP: list[Callable[[str], bool]] = []


def _secrets_off_loop() -> Callable[[str], bool]:
    if not _SECRETS_OFF_LOOP:
        from openkms.secretsmanager.dispatch import runs_off_loop

        _SECRETS_OFF_LOOP.append(runs_off_loop)
    return _SECRETS_OFF_LOOP[0]


def _credential_key_id(scope: Scope) -> str:
    """The access key id the request's Authorization header (or presigned URL) names."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            _, _, rest = value.partition(b"Credential=")
            return str(rest.split(b"/", 1)[0].split(b",", 1)[0].decode("latin-1"))
    query = scope.get("query_string", b"")
    _, _, rest = query.partition(b"X-Amz-Credential=")
    return str(rest.split(b"%2F", 1)[0].split(b"/", 1)[0].split(b"&", 1)[0].decode("latin-1"))


def _query_action(scope: Scope, body: bytes) -> str:
    """The ``Action`` of an IAM or STS request, read without trusting the request."""
    for source in (body[:8192], scope.get("query_string", b"")[:8192]):
        for item in source.split(b"&"):
            name, _, value = item.partition(b"=")
            if name == b"Action":
                return str(unquote_to_bytes(value).decode("utf-8", "replace"))
    return ""


def _too_large(limit: int) -> RequestEntityTooLarge:
    return RequestEntityTooLarge(f"Request body is larger than the limit of {limit} bytes.")


def create_app(settings: Settings) -> OpenKMSApp:
    return OpenKMSApp(build_runtime(settings))


def app_from_env() -> OpenKMSApp:
    """The uvicorn factory for each worker process."""
    app = create_app(settings_from_env())
    # What is loaded by now (modules, the API model, settings) lives as long as the worker. Out
    # of the collector's sight, it no longer makes every full collection walk it: with a busy
    # authorization cache, those walks put 10-20 ms pauses into the p99 at 32 connections.
    gc.collect()
    gc.freeze()
    return app
