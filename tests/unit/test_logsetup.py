"""Logging: JSON lines with request ids, text lines, and no binary data ever emitted."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator

import pytest

from openkms.logsetup import (
    WITHHELD,
    JsonFormatter,
    SecretFilter,
    bind_request_id,
    configure_logging,
    reset_request_id,
    uvicorn_log_config,
)

SECRET = b"\x13\x37 plaintext data key \xde\xad\xbe\xef"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Each test changes the global logging configuration; put it back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    named = {}
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "openkms.t"):
        logger = logging.getLogger(name)
        named[name] = (list(logger.handlers), logger.level, logger.propagate, logger.disabled)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, (handlers, level, propagate, disabled) in named.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
        logger.disabled = disabled
    logging.captureWarnings(False)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def assert_no_secret(text: str) -> None:
    for fragment in ("plaintext data key", "dead", "deadbeef", "\\xde\\xad", "\\x13"):
        assert fragment not in text, text


def test_json_lines_carry_the_request_id() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    log = logging.getLogger("openkms.t")
    log.info("before any request")
    token = bind_request_id("3f2b6a1e-request")
    try:
        log.warning("key %s is disabled", "arn:aws:kms:us-east-1:111122223333:key/abc")
    finally:
        reset_request_id(token)
    log.debug("below the level")
    first, second = lines(stream)
    assert set(first) == {"time", "level", "logger", "message", "pid"}
    assert first["level"] == "info" and first["logger"] == "openkms.t"
    assert str(first["time"]).endswith("Z") and "T" in str(first["time"])
    assert second["request_id"] == "3f2b6a1e-request"
    assert second["message"] == "key arn:aws:kms:us-east-1:111122223333:key/abc is disabled"
    assert second["level"] == "warning"


def test_text_lines_carry_the_request_id() -> None:
    stream = io.StringIO()
    configure_logging("warning", "text", stream)
    token = bind_request_id("req-42")
    try:
        logging.getLogger("openkms.t").error("storage failure")
    finally:
        reset_request_id(token)
    line = stream.getvalue().strip()
    assert line.endswith("error openkms.t [req-42] storage failure")


def test_binary_arguments_are_withheld() -> None:
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    log = logging.getLogger("openkms.t")
    log.info("decrypted %r for %s", SECRET, "key-1")
    log.info("context %s", {"nested": [("a", bytearray(SECRET))]})
    log.info("view %s", memoryview(SECRET))
    log.info(SECRET)  # the message itself
    log.info("extra field", extra={"plaintext": SECRET, "size": 32})
    records = lines(stream)
    assert len(records) == 5  # the events are still logged...
    text = stream.getvalue()
    assert_no_secret(text)  # ...without the bytes
    assert records[0]["message"] == f"decrypted %r for %s {WITHHELD}"
    assert records[3]["message"] == f"bytes {WITHHELD}"
    assert records[4]["plaintext"] == WITHHELD and records[4]["size"] == 32


def test_exceptions_holding_bytes_keep_their_traceback_but_not_their_message() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    log = logging.getLogger("openkms.t")
    try:
        try:
            raise ValueError(SECRET)
        except ValueError as inner:
            raise RuntimeError("unwrap failed") from inner
    except RuntimeError:
        log.exception("request failed")
    (record,) = lines(stream)
    exception = str(record["exception"])
    assert_no_secret(exception)
    assert "ValueError: [message withheld: binary data]" in exception
    assert "RuntimeError: unwrap failed" in exception
    assert "Traceback (most recent call last)" in exception
    assert "direct cause" in exception


def test_ordinary_exceptions_are_formatted_normally() -> None:
    stream = io.StringIO()
    configure_logging("info", "text", stream)
    try:
        raise KeyError("alias/missing")
    except KeyError:
        logging.getLogger("openkms.t").exception("lookup failed")
    text = stream.getvalue()
    assert "KeyError: 'alias/missing'" in text and "lookup failed" in text


def test_records_without_binary_data_are_untouched() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "n=%d s=%s", (3, "ok"), None)
    assert SecretFilter().filter(record)
    assert record.getMessage() == "n=3 s=ok"


def test_configure_logging_replaces_only_its_own_handler() -> None:
    other = logging.NullHandler()
    logging.getLogger().addHandler(other)
    configure_logging("info", "json", io.StringIO())
    configure_logging("info", "text", io.StringIO())
    handlers = logging.getLogger().handlers
    assert other in handlers
    assert len([h for h in handlers if h.get_name() == "openkms"]) == 1


def test_uvicorn_loggers_go_through_the_same_handler(capsys: pytest.CaptureFixture[str]) -> None:
    logging.config.dictConfig(uvicorn_log_config("info", "json"))
    token = bind_request_id("r-1")
    try:
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 1234)
        logging.getLogger("uvicorn.error").warning("odd body %s", SECRET)
    finally:
        reset_request_id(token)
    err = capsys.readouterr().err
    records = [json.loads(line) for line in err.splitlines()]
    assert records[0]["logger"] == "uvicorn.error"
    assert records[0]["message"] == "Started server process [1234]"
    assert records[0]["request_id"] == "r-1"
    assert WITHHELD in str(records[1]["message"])
    assert_no_secret(err)


def test_uvicorn_log_config_rejects_unknown_formats() -> None:
    with pytest.raises(ValueError, match="log_format"):
        uvicorn_log_config("info", "xml")
    with pytest.raises(ValueError, match="log_level"):
        configure_logging("loud", "json", io.StringIO())


def test_json_formatter_never_fails_on_odd_values() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (object(),), None)
    assert json.loads(JsonFormatter().format(record))["message"].startswith("<object object")
