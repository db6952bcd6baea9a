"""Numbered schema migrations (``migrations/NNNN_name.sql``), shared by every SQL backend."""

from __future__ import annotations

from importlib import resources


def load_migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) in order."""
    found: list[tuple[int, str, str]] = []
    folder = resources.files("openkms.storage").joinpath("migrations")
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text("utf-8")))
    return sorted(found)


def split_statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]
