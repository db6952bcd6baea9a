"""The worker factory: what a worker has loaded at start-up is kept out of the collector's walks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import child_env, create_account

CODE = """
import gc, sys
from openkms.config import ENV_SETTINGS, load_settings
import os
os.environ[ENV_SETTINGS] = load_settings(None, {"OPENKMS_DATA_DIR": sys.argv[1]}, {}).to_json()
from openkms.http.app import app_from_env
assert gc.get_freeze_count() == 0
app = app_from_env()
print(gc.get_freeze_count())
"""


def test_the_worker_factory_freezes_what_start_up_loaded(tmp_path: Path) -> None:
    create_account(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", CODE, str(tmp_path)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # Tens of thousands of objects: modules, the API model, the validation shapes.
    assert int(proc.stdout.strip()) > 10_000
