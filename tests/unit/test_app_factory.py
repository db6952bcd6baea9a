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


CONSOLE_CODE = """
import os, sys
from openkms.config import ENV_SETTINGS, load_settings
os.environ[ENV_SETTINGS] = load_settings(
    None, {"OPENKMS_DATA_DIR": sys.argv[1]}, {"console_enabled": sys.argv[2] == "on"}
).to_json()
from openkms.console.app import PREFIX, ConsoleApp
from openkms.console.server import app_from_env
from openkms.http.app import CONSOLE_PREFIX, OpenKMSApp
app = app_from_env()
assert PREFIX == CONSOLE_PREFIX, (PREFIX, CONSOLE_PREFIX)
assert type(app) is OpenKMSApp
print(type(app.console).__name__)
"""


def test_the_serve_factory_attaches_the_console_to_the_api_app(tmp_path: Path) -> None:
    """`openkms serve`'s app is the API app itself (no ASGI layer in front of each API
    request); it hands /console to the console, unless the settings turn it off."""
    create_account(tmp_path)
    for setting, expected in (("on", "ConsoleApp"), ("off", "NoneType")):
        proc = subprocess.run(
            [sys.executable, "-c", CONSOLE_CODE, str(tmp_path), setting],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == expected
