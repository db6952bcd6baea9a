"""openkms's own operations, beside AWS's: for the console (issue #20), usable by any client.

They are called like a KMS operation (JSON 1.1, SigV4-signed for the ``kms`` service, audited),
but under the target prefix ``OpenKMS.``, never AWS's ``TrentService.``: no AWS operation can
ever be named by such a target, and the audit record's ``eventName`` (``OpenKMS.SearchKeys``,
with its dot) cannot be mistaken for one either. Each validates its own input (they are not in
botocore's model). Documented in docs/compatibility.md ("Key search")."""

from __future__ import annotations

from openkms.protocol.operations import Handler
from openkms.service import key_search

EXTENSION_PREFIX = "OpenKMS."

EXTENSIONS: dict[str, Handler] = {
    "OpenKMS.SearchKeys": key_search.search_keys,
    "OpenKMS.CountKeysByState": key_search.count_keys_by_state,
}
