"""Console templates rendered alone: the overview says what its key counts cover; the secrets
pages render every shape of rotation configuration DescribeSecret and ListSecrets can answer."""

from __future__ import annotations

from types import SimpleNamespace

from jinja2 import Environment, FileSystemLoader, select_autoescape

from openkms.console import filters
from openkms.console.app import HERE

ARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:a-AbCdEf"


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                      autoescape=select_autoescape(default=True))
    filters.install(env)
    return env


SESSION = SimpleNamespace(arn="arn:aws:iam::111122223333:root")


def _render(complete: bool) -> str:
    return _env().get_template("overview.html").render(
        session=SESSION, csrf="t", nav="overview.html", states=[("Enabled", 500)], counted=500,
        deletions=[], rotations=[], states_complete=complete,
        deletions_complete=complete, rotations_complete=complete, metrics_enabled=False,
    )


def test_a_partial_count_says_so() -> None:
    page = _render(complete=False)
    assert "Not all keys:" in page and "500 keys counted before the time budget" in page
    assert "Among the first keys due only." in page
    assert "Among the first keys pending deletion only." in page


def test_a_complete_count_says_all() -> None:
    page = _render(complete=True)
    assert "All 500 keys of this Region that you may describe." in page
    assert "Not all keys" not in page and "Among the first" not in page


def test_secrets_render_every_rotation_shape() -> None:
    rows = [
        {"Name": "a", "ARN": ARN},
        {"Name": "b", "ARN": ARN, "RotationEnabled": True},
        {"Name": "c", "ARN": ARN, "RotationEnabled": True,
         "RotationRules": {"AutomaticallyAfterDays": 30}},
        {"Name": "d", "ARN": ARN, "RotationEnabled": True,
         "RotationRules": {"ScheduleExpression": "rate(4 hours)"}},
    ]
    page = _env().get_template("secrets_list.html").render(
        session=SESSION, csrf="t", nav="secrets", rows=rows, q="", field="all",
        fields=("all",), deleted=False,
    )
    assert "every 30 days" in page and "on rate(4 hours)" in page
    for meta in rows:
        detail = _env().get_template("secrets_detail.html").render(
            session=SESSION, csrf="t", nav="secrets", meta=meta, secret_id=ARN,
            versions=[], policy={}, revealed=None,
        )
        assert 'id="reveal"' in detail
