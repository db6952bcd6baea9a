"""GenerateRandom."""

from __future__ import annotations

import os
from typing import Any

from openkms.errors import ValidationException
from openkms.service.common import refuse_recipient
from openkms.service.context import RequestContext
from openkms.service.runtime import Runtime


def generate_random(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    refuse_recipient(req)
    rt.access.authorize_account(ctx, "kms:GenerateRandom", "*", req)
    count = req.get("NumberOfBytes")
    if count is None:
        raise ValidationException("NumberOfBytes is required.")
    store_id = req.get("CustomKeyStoreId")
    if store_id:
        from openkms.service.key_store_keys import random_from_store

        return {"Plaintext": random_from_store(rt, ctx, store_id, count)}
    return {"Plaintext": os.urandom(count)}
