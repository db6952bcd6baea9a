"""The audit log: one CloudTrail-shaped record per API call, hash-chained JSON lines.

How the server uses it (see ``docs/formats/audit.md``):

* at startup, once per worker process: ``sink = FileAuditSink(path)`` (it takes a free
  worker slot, resumes the chain of that slot's file, and starts its flush thread);
* on each request, after the handler ran and before the response is sent:
  ``sink.write(build_record(...))``, or on the KMS request path
  ``sink.write_parts(*record_parts(...))`` (the same record, serialized with its start kept per
  caller and second); on ``AuditWriteError`` answer the request with a server error instead
  (fail-closed);
* at shutdown: ``sink.close()`` (flushes and fsyncs what is queued).
"""

from openkms.audit.chain import Problem, VerifyReport, verify_files
from openkms.audit.events import build_record, is_read_only
from openkms.audit.redaction import redact
from openkms.audit.sinks import (
    AuditSink,
    AuditWriteError,
    FileAuditSink,
    MultiSink,
    NullAuditSink,
    SinkStats,
    StdoutAuditSink,
)

__all__ = [
    "AuditSink",
    "AuditWriteError",
    "FileAuditSink",
    "MultiSink",
    "NullAuditSink",
    "Problem",
    "SinkStats",
    "StdoutAuditSink",
    "VerifyReport",
    "build_record",
    "is_read_only",
    "redact",
    "verify_files",
]
