"""The overview says what its key counts cover: all keys, or only the first ones scanned."""

from __future__ import annotations

from types import SimpleNamespace

from jinja2 import Environment, FileSystemLoader, select_autoescape

from openkms.console import filters
from openkms.console.app import HERE


def _render(complete: bool) -> str:
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                      autoescape=select_autoescape(default=True))
    filters.install(env)
    session = SimpleNamespace(arn="arn:aws:iam::111122223333:root")
    return env.get_template("overview.html").render(
        session=session, csrf="t", nav="overview.html", states=[("Enabled", 500)],
        deletions=[], rotations=[], scanned=500, complete=complete, metrics_enabled=False,
    )


def test_a_partial_count_says_so() -> None:
    page = _render(complete=False)
    assert "Not all keys:" in page and "only the first 500 keys" in page
    assert page.count("Among the first 500 keys only.") == 2


def test_a_complete_count_says_all() -> None:
    page = _render(complete=True)
    assert "All 500 keys of this Region." in page and "Not all keys" not in page
