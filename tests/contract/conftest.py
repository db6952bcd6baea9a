"""PostgreSQL for the contract suite: one throwaway cluster per test process (``initdb`` +
``pg_ctl`` on a free port in a temp dir, see tests/integration/pg.py), one fresh schema per
test. Skipped, loudly, only when no PostgreSQL is installed at all; a cluster that is installed
but does not start fails the tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.pg import (
    PgCluster,
    find_bin_dir,
    missing_reason,
    require_postgres,
    shared_cluster,
)


@pytest.fixture(scope="session")
def pg_cluster() -> PgCluster:
    require_postgres()
    return shared_cluster()


@pytest.fixture(scope="session")
def contract_database(pg_cluster: PgCluster) -> str:
    return pg_cluster.create_database()


@pytest.fixture
def postgres_url(pg_cluster: PgCluster, contract_database: str) -> Iterator[str]:
    """A URL whose connections see only a fresh, empty schema: each test starts from nothing
    and runs every migration."""
    url = pg_cluster.create_schema(contract_database)
    try:
        yield url
    finally:
        pg_cluster.drop_schema(url)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if find_bin_dir() is None:
        terminalreporter.write_line(missing_reason(), red=True, bold=True)
