"""Which tests `make test` runs against which build (``OPENKMS_TEST_BUILD``).

The compiled build (what ``make run`` serves) runs the whole suite. The plain-Python build runs
the same sources without the mypyc extensions, so it only needs the tests that can answer
differently there: what runs the compiled modules (mypyc-modules.txt) in-process (unit tests,
the table-driven vectors), the request path end to end over the wire (conformance: every
operation, the validation errors, SigV4, the crypto and wire formats), the security tests of the
compiled policy, condition-key, SigV4 and encryption-context code and the fuzzer, and a
representative Secrets Manager set (GetSecretValue's path is compiled). There the package is
a wheel, not the tree: unit/test_package_data.py checks it carries every data file.

What the plain-Python build leaves to the compiled one runs plain Python in both builds or tests
components beside the request path: the storage and root-of-trust backends (PostgreSQL,
SoftHSM2: the contract suite), multi-node, HSM, custom key store, sealing, install and interop
end-to-end tests, the console (plain Python in both builds), the other clients (AWS CLI,
JavaScript SDK, caching client) and the restart and worker tests. Nothing is dropped from every
build: the compiled run has them all, and it is that run that fails CI when a headline component
is missing (tests/components.py).

``OPENKMS_TEST_PURE=all`` (``make test-pure PURE=all``) runs the whole suite on the plain
build too; a module named on the command line runs whatever the list says. A new test module
lands in the plain run when its path (or its directory) is listed here.
"""

from __future__ import annotations

import os
from pathlib import Path

# Path prefixes under tests/ of the plain-Python run. A directory ends in "/".
PURE_BUILD = (
    "unit/",
    "vectors/",
    "conformance/test_aliases.py",
    "conformance/test_auth.py",
    "conformance/test_aws_recorded.py",
    "conformance/test_crypto.py",
    "conformance/test_every_operation.py",
    "conformance/test_http_framing.py",
    "conformance/test_keys.py",
    "conformance/test_tags.py",
    "conformance/test_validation_errors.py",
    "conformance/test_wire.py",
    # Attacks on the compiled authorization, SigV4 and encryption-context code. The cross-account
    # module (63 cases, the costliest) is left to the compiled run: the evaluator it drives runs
    # in-process here (unit/test_policy_*.py, the policy vectors, unit/test_iam_authz.py).
    "security/test_alias_authorization.py",
    "security/test_encryption_context_case.py",
    "security/test_fuzz.py",
    "security/test_principal_condition_keys.py",
    "security/test_signature_coverage.py",
    "security/test_wildcard_redos.py",
    "security/test_secrets_resource_policies.py",
    "secretsmanager/test_secrets_crud.py",
    "secretsmanager/test_secrets_kms.py",
    "secretsmanager/test_secrets_malformed.py",
    "secretsmanager/test_access_resource_policy.py",
    "secretsmanager/test_access_read_cache.py",
)


def plain_build_subset() -> bool:
    """True when this run is the plain-Python build's and it was not asked for everything."""
    return (
        os.environ.get("OPENKMS_TEST_BUILD") == "pure"
        and os.environ.get("OPENKMS_TEST_PURE", "").strip().lower() != "all"
    )


def in_pure_build(relative: str) -> bool:
    """``relative``: a test module's path under tests/, with "/" separators."""
    return relative.startswith(PURE_BUILD)


def _holds_pure_tests(relative_dir: str) -> bool:
    prefix = relative_dir + "/"
    return any(entry.startswith(prefix) or prefix.startswith(entry) for entry in PURE_BUILD)


def left_to_compiled_run(path: Path, tests_root: Path) -> bool:
    """True for a test module (or a directory of them) the plain-Python run does not collect.
    Not collecting them (rather than deselecting) spares every xdist worker their imports.
    Paths named on the command line are collected whatever this says (pytest asks only about
    the others)."""
    if not plain_build_subset() or not path.is_relative_to(tests_root):
        return False
    relative = path.relative_to(tests_root).as_posix()
    if path.is_dir():
        return relative != "." and not _holds_pure_tests(relative)
    return path.name.startswith("test_") and path.suffix == ".py" and not in_pure_build(relative)


def summary_line() -> str | None:
    """What the terminal summary says about the selection (None when nothing was left out)."""
    if not plain_build_subset():
        return None
    return (
        "plain-Python build: ran the build-sensitive part of the suite (tests/builds.py); the "
        "compiled build's run has the rest (OPENKMS_TEST_PURE=all for everything here)"
    )
