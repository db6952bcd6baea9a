"""The one dispatch table (protocol/operations.py) against the vendored AWS KMS model, and the
vendored model against the installed botocore's."""

from __future__ import annotations

import uuid
from typing import Any

import botocore
import botocore.loaders
import pytest

from openkms.clock import FixedClock
from openkms.errors import (
    OpenKMSError,
    OperationNotImplementedException,
    UnknownOperationException,
    all_error_classes,
)
from openkms.protocol import model
from openkms.protocol.operations import OPERATIONS, READ_ONLY, handler_for, implemented
from openkms.rootoftrust.memory import MemoryRoot
from openkms.service.context import Principal, RequestContext
from openkms.service.runtime import Runtime
from openkms.storage.memory import MemoryStorage

MODEL_OPERATION_COUNT = 56
# What the foundation implements; the list only grows.
FOUNDATION = {
    "CancelKeyDeletion",
    "CreateAlias",
    "CreateKey",
    "Decrypt",
    "DeleteAlias",
    "DescribeKey",
    "DisableKey",
    "EnableKey",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateRandom",
    "GetKeyLastUsage",
    "GetKeyPolicy",
    "ListAliases",
    "ListKeyPolicies",
    "ListKeys",
    "ListResourceTags",
    "PutKeyPolicy",
    "ReEncrypt",
    "ScheduleKeyDeletion",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateKeyDescription",
}


def model_operations() -> list[str]:
    return model.operation_names()


def botocore_kms_model() -> dict[str, Any]:
    loaded: dict[str, Any] = botocore.loaders.create_loader().load_service_model("kms", "service-2")
    return loaded


def without_documentation(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_documentation(v) for k, v in value.items() if k != "documentation"}
    if isinstance(value, list):
        return [without_documentation(v) for v in value]
    return value


def runtime() -> Runtime:
    return Runtime(MemoryStorage(), MemoryRoot(), FixedClock())


def context(operation: str) -> RequestContext:
    principal = Principal(
        account_id="111122223333",
        arn="arn:aws:iam::111122223333:root",
        kind="root",
        access_key_id="AKIATESTTESTTESTTEST",
        user_id="111122223333",
    )
    return RequestContext(principal, "us-east-1", str(uuid.uuid4()), 1_700_000_000.0, operation)


# --- the model ------------------------------------------------------------------------------------
def test_the_model_has_56_operations() -> None:
    assert len(model_operations()) == MODEL_OPERATION_COUNT


def test_vendored_model_is_botocores_minus_documentation() -> None:
    vendored = dict(model.load_model())
    metadata = dict(vendored["metadata"])
    source = metadata.pop("openkms_source", None)
    vendored["metadata"] = metadata
    expected = without_documentation(botocore_kms_model())
    assert source is not None, "the vendored model should say which botocore it came from"
    assert vendored == expected, (
        f"the vendored model ({source}) differs from botocore {botocore.__version__}'s KMS "
        "model: re-vendor src/openkms/protocol/data/kms-2014-11-01.json"
    )


def test_vendored_model_has_no_documentation_left() -> None:
    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            assert "documentation" not in value, path
            for k, v in value.items():
                walk(v, f"{path}/{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}/{i}")

    walk(model.load_model(), "")


def test_target_prefix_is_the_models() -> None:
    assert model.load_model()["metadata"]["targetPrefix"] == model.TARGET_PREFIX == "TrentService"


# --- the dispatch table ---------------------------------------------------------------------------
def test_every_dispatched_operation_is_in_the_model() -> None:
    assert set(OPERATIONS) <= set(model_operations())
    assert implemented() == frozenset(OPERATIONS)


def test_foundation_operations_are_implemented() -> None:
    assert set(OPERATIONS) >= FOUNDATION


def test_read_only_names_model_operations() -> None:
    assert set(READ_ONLY) <= set(model_operations())


def test_an_operation_of_the_model_without_a_handler_names_itself() -> None:
    """A model operation this build lacks answers UnsupportedOperationException naming it (the
    real-server check of every operation is tests/conformance/test_every_operation.py)."""
    import openkms.protocol.operations as operations

    saved = operations.OPERATIONS.pop("DescribeKey")
    try:
        handler = handler_for("DescribeKey")
        with pytest.raises(OperationNotImplementedException) as caught:
            handler(runtime(), context("DescribeKey"), {})
    finally:
        operations.OPERATIONS["DescribeKey"] = saved
    assert "DescribeKey" in caught.value.message
    assert caught.value.code == "UnsupportedOperationException"
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "name", ["NoSuchThing", "", "listKeys", "ListKeys ", "TrentService.ListKeys", "__init__"]
)
def test_unknown_operations(name: str) -> None:
    with pytest.raises(UnknownOperationException) as caught:
        handler_for(name)
    assert caught.value.status == 400


def test_handlers_take_runtime_context_and_request() -> None:
    """A cheap call of every implemented handler with an empty request must fail with a typed
    client error or succeed, never crash with a Python error."""
    rt = runtime()
    for operation, handler in sorted(OPERATIONS.items()):
        try:
            handler(rt, context(operation), {"KeyId": str(uuid.uuid4())})
        except OpenKMSError as exc:
            assert not exc.server_fault, (operation, exc)
        except KeyError:
            # Required members are the validator's job; a handler may index them directly.
            pass


def test_error_codes_cover_every_modelled_error() -> None:
    """Every exception shape the model declares has a class with that __type."""
    modelled = {
        name
        for name, shape in model.shapes().items()
        if shape.get("type") == "structure" and shape.get("exception")
    }
    assert modelled
    missing = modelled - set(all_error_classes())
    assert not missing, missing


def test_model_error_faults_match_the_classes() -> None:
    classes = all_error_classes()
    for name, shape in model.shapes().items():
        if not shape.get("exception") or name not in classes:
            continue
        fault = shape.get("fault", False)
        assert classes[name].server_fault == fault, name
        assert classes[name].status == (500 if fault else 400), name
