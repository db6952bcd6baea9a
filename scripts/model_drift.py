"""`make model-drift`: what a newer botocore changes in the AWS models openkms vendors.

openkms serves KMS, IAM, STS and Secrets Manager from models vendored out of one botocore
release (the one requirements/constraints.txt holds, named in each model's
metadata.openkms_source); the tests compare them with the installed, locked botocore, never
with the newest. This reports what a
given (default: the newest) botocore release adds, removes or changes, operation by operation
and shape by shape, so that following AWS is a deliberate act:

    make model-drift                        # against the newest botocore on the index
    make model-drift BOTOCORE=1.44.18       # against that release
    python scripts/model_drift.py --write   # re-vendor from it (then update the constraint,
                                            # run `make lock` and `make test`)

It downloads the botocore wheel (no install) and reads the models out of it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "kms": ("2014-11-01", ROOT / "src/openkms/protocol/data/kms-2014-11-01.json"),
    "iam": ("2010-05-08", ROOT / "src/openkms/iam/data/iam-2010-05-08.json"),
    "sts": ("2011-06-15", ROOT / "src/openkms/iam/data/sts-2011-06-15.json"),
    "secretsmanager": (
        "2017-10-17",
        ROOT / "src/openkms/secretsmanager/data/secretsmanager-2017-10-17.json",
    ),
}
UNVENDORED = ("documentation", "documentationUrl", "examples")


def strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in UNVENDORED}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def download(version: str | None) -> tuple[Path, str]:
    target = Path(tempfile.mkdtemp(prefix="openkms-drift-"))
    spec = f"botocore=={version}" if version else "botocore"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
         "-d", str(target), spec],
        check=True,
    )
    wheel = next(target.glob("botocore-*.whl"))
    return wheel, wheel.name.split("-")[1]


def model_from_wheel(wheel: Path, service: str, api_version: str) -> dict[str, Any]:
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(f"botocore/data/{service}/{api_version}/service-2.json.gz")
    loaded: dict[str, Any] = json.loads(gzip.decompress(data))
    return loaded


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for section in ("operations", "shapes"):
        before, after = old.get(section, {}), new.get(section, {})
        for name in sorted(set(after) - set(before)):
            lines.append(f"  + {section[:-1]} {name}")
        for name in sorted(set(before) - set(after)):
            lines.append(f"  - {section[:-1]} {name}")
        for name in sorted(set(before) & set(after)):
            if before[name] != after[name]:
                lines.append(f"  ~ {section[:-1]} {name}: {describe(before[name], after[name])}")
    return lines


def describe(old: dict[str, Any], new: dict[str, Any]) -> str:
    parts = []
    if "enum" in old or "enum" in new:
        added = [v for v in new.get("enum", []) if v not in old.get("enum", [])]
        removed = [v for v in old.get("enum", []) if v not in new.get("enum", [])]
        parts += [f"+enum {added}"] if added else []
        parts += [f"-enum {removed}"] if removed else []
    old_members, new_members = old.get("members", {}), new.get("members", {})
    for member in sorted(set(new_members) - set(old_members)):
        parts.append(f"+member {member}")
    for member in sorted(set(old_members) - set(new_members)):
        parts.append(f"-member {member}")
    for member in sorted(set(old_members) & set(new_members)):
        if old_members[member] != new_members[member]:
            parts.append(f"~member {member}")
    if old.get("required") != new.get("required"):
        parts.append(f"required {old.get('required')} -> {new.get('required')}")
    other = {k for k in set(old) | set(new) if old.get(k) != new.get(k)} - {
        "enum", "members", "required"
    }
    parts += [f"~{key}" for key in sorted(other)]
    return ", ".join(parts) or "changed"


def write(path: Path, model: dict[str, Any], version: str) -> None:
    current = json.loads(path.read_text())
    stripped = strip(model)
    stripped["metadata"] = {**stripped["metadata"], "openkms_source": f"botocore {version}"}
    sort = list(current) == sorted(current)  # keep each file's existing key order style
    path.write_text(json.dumps(stripped, indent=1, sort_keys=sort) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--botocore", help="the release to compare with (default: newest)")
    parser.add_argument("--write", action="store_true", help="re-vendor the models from it")
    args = parser.parse_args()
    wheel, version = download(args.botocore)
    drift = False
    for service, (api_version, path) in MODELS.items():
        vendored = json.loads(path.read_text())
        source = vendored.get("metadata", {}).get("openkms_source", "?")
        fresh = strip(model_from_wheel(wheel, service, api_version))
        lines = compare(vendored, fresh)
        print(f"{service} ({source} -> botocore {version}): "
              f"{'no change' if not lines else f'{len(lines)} change(s)'}")
        for line in lines:
            print(line)
        drift = drift or bool(lines)
        if args.write and lines:
            write(path, model_from_wheel(wheel, service, api_version), version)
            print(f"  written: {path.relative_to(ROOT)}")
    if args.write and drift:
        print(f"\nnext: set botocore=={version} in requirements/constraints.txt, make lock, "
              "make test")
    return 0


if __name__ == "__main__":
    sys.exit(main())
