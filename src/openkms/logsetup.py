"""Logging: one handler on the root logger, text or JSON lines, never binary data.

``configure_logging(level, fmt)`` sets up the stdlib root logger (uvicorn's loggers propagate
to it); ``uvicorn_log_config(level, fmt)`` is the ``log_config`` to hand ``uvicorn.run`` so
that every worker process configures itself the same way (uvicorn applies its log config in
each worker). JSON lines carry ``time``, ``level``, ``logger``, ``message``, ``pid`` and
``request_id`` when the app has set one (:func:`bind_request_id`), plus ``exception`` when
there is one.

:class:`SecretFilter` guards every record: if its message or arguments contain a ``bytes``,
``bytearray`` or ``memoryview`` (plaintext, key material, data keys and ciphertexts are all
bytes in openkms), the record is emitted without them (its unformatted message, arguments
withheld), and an exception whose arguments hold bytes is shown without its message.
"""

from __future__ import annotations

import contextvars
import datetime
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from typing import IO, Any

import orjson

__all__ = [
    "JsonFormatter",
    "RequestIdFilter",
    "SecretFilter",
    "TextFormatter",
    "bind_request_id",
    "configure_logging",
    "request_id_var",
    "reset_request_id",
    "uvicorn_log_config",
]

#: The id of the request being served, set by the app for the duration of the request.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "openkms_request_id", default=None
)

WITHHELD = "[arguments withheld: binary data]"
_EXC_WITHHELD = "[message withheld: binary data]"
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
# The attributes every LogRecord has; anything else came from ``extra=``.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
}
_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": 5,  # uvicorn's TRACE level
}


def bind_request_id(request_id: str | None) -> contextvars.Token[str | None]:
    return request_id_var.set(request_id)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    request_id_var.reset(token)


# --- Secrets -------------------------------------------------------------------------------------
_BINARY = (bytes, bytearray, memoryview)


def _holds_binary(value: object, depth: int = 0) -> bool:
    if isinstance(value, _BINARY):
        return True
    if depth > 4 or isinstance(value, str | int | float | bool | type(None)):
        return False
    if isinstance(value, dict):
        return any(
            _holds_binary(k, depth + 1) or _holds_binary(v, depth + 1) for k, v in value.items()
        )
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_binary(item, depth + 1) for item in value)
    if isinstance(value, BaseException):
        return _holds_binary(value.args, depth + 1)
    return False


def _exception_chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _format_exception_safely(exc: BaseException) -> str:
    """The traceback with the message of any exception holding bytes withheld."""
    parts: list[str] = []
    chain = list(_exception_chain(exc))
    for index, item in enumerate(reversed(chain)):
        if index:
            parts.append(
                "\nThe above exception was the direct cause of the following exception:\n\n"
                if item.__cause__ is not None
                else "\nDuring handling of the above exception, another exception occurred:\n\n"
            )
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(item.__traceback__))
        name = type(item).__qualname__
        if _holds_binary(item.args):
            parts.append(f"{name}: {_EXC_WITHHELD}\n")
        else:
            parts.extend(traceback.format_exception_only(type(item), item))
    return "".join(parts).rstrip("\n")


class SecretFilter(logging.Filter):
    """Emits records that carry binary data without it (never drops the event itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _holds_binary(record.msg) or _holds_binary(record.args):
            template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
            record.msg = f"{template} {WITHHELD}"
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if any(_holds_binary(item.args) for item in _exception_chain(exc)):
                record.exc_text = _format_exception_safely(exc)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRS and _holds_binary(value):
                setattr(record, name, WITHHELD)
        return True


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (the current request's, or None)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return True


# --- Formatters ----------------------------------------------------------------------------------
def _iso_time(created: float) -> str:
    moment = datetime.datetime.fromtimestamp(created, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process if record.process is not None else os.getpid(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is None:
            request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for name, value in vars(record).items():
            if name in _STANDARD_ATTRS or name in entry or name.startswith("_"):
                continue
            if isinstance(value, str | int | float | bool) or value is None:
                entry[name] = value
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """``2024-05-01T12:00:00.123Z warning openkms.http [request-id] message``."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        line = (
            f"{_iso_time(record.created)} {record.levelname.lower()} {record.name}"
            f"{f' [{request_id}]' if request_id else ''} {record.getMessage()}"
        )
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line


def _formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return TextFormatter()
    raise ValueError(f"log_format: {fmt!r} is not one of json, text")


def level_number(level: str | int) -> int:
    if isinstance(level, int):
        return level
    try:
        return _LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"log_level: {level!r} is not one of {', '.join(_LEVELS)}") from None


# --- Setup ---------------------------------------------------------------------------------------
_HANDLER_NAME = "openkms"


def make_handler(fmt: str, stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(_formatter(fmt))
    handler.addFilter(SecretFilter())
    handler.addFilter(RequestIdFilter())
    return handler


def configure_logging(
    level: str | int = "warning", fmt: str = "text", stream: IO[str] | None = None
) -> logging.Handler:
    """Routes the root logger and uvicorn's loggers through one handler; returns it.

    Calling it again replaces the handler it installed before (and leaves others alone)."""
    handler = make_handler(fmt, stream)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level_number(level))
    logging.captureWarnings(True)
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        for existing in list(logger.handlers):
            logger.removeHandler(existing)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    return handler


def uvicorn_log_config(level: str | int = "warning", fmt: str = "text") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``uvicorn.run(log_config=...)``: every worker then
    logs through the same formatter and filters, uvicorn's own loggers included."""
    formatter = (
        "openkms.logsetup.JsonFormatter" if fmt == "json" else "openkms.logsetup.TextFormatter"
    )
    _formatter(fmt)  # validate
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "secrets": {"()": "openkms.logsetup.SecretFilter"},
            "request_id": {"()": "openkms.logsetup.RequestIdFilter"},
        },
        "formatters": {"openkms": {"()": formatter}},
        "handlers": {
            _HANDLER_NAME: {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "openkms",
                "filters": ["secrets", "request_id"],
            }
        },
        "root": {"handlers": [_HANDLER_NAME], "level": level_number(level)},
        "loggers": {
            name: {"handlers": [], "level": "NOTSET", "propagate": True}
            for name in _UVICORN_LOGGERS
        },
    }
