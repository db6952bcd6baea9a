"""Real components the suite drives (SoftHSM2, PostgreSQL, the AWS Encryption SDK, nginx and
HAProxy, the custom key store set-up, the SigV4 vectors, Node.js for the AWS SDK for
JavaScript): what happens when one is missing.

On a developer's machine a missing component skips its tests, loudly. Under CI (``CI`` set to
true, as CI sets it) it fails them: a CI run must not go green by not testing a headline
feature. ``scripts/ensure-test-deps.sh`` installs what can be installed before the suite runs.

``OPENKMS_TEST_HIDE=softhsm2,postgresql`` makes the suite behave as if those components were
missing (and not installable), to show what CI does then.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import pytest

HEADLINE = frozenset(
    {"softhsm2", "postgresql", "aws-encryption-sdk", "nginx", "haproxy", "custom-key-store",
     "sigv4-vectors", "chromium", "nodejs"}
)


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def hidden(component: str) -> bool:
    """True when the run was told to act as if ``component`` were missing."""
    names = os.environ.get("OPENKMS_TEST_HIDE", "")
    return component in {name.strip() for name in names.split(",") if name.strip()}


def unavailable(component: str, why: str, *, module_level: bool = False) -> NoReturn:
    """``component`` cannot be used here: skip loudly, or fail under CI."""
    assert component in HEADLINE, component
    message = f"{component.upper()} TESTS DID NOT RUN: {why}"
    print(f"\n*** {message} ***", file=sys.stderr, flush=True)
    if under_ci():
        pytest.fail(f"CI=true and a headline component is missing. {message}", pytrace=False)
    pytest.skip(message, allow_module_level=module_level)
