"""Fixtures of the judge tests."""

from __future__ import annotations

import pytest
from judge_fakes import FakeServer


@pytest.fixture
def fake_server(tmp_path):
    """Factory: fake_server(config) -> a started FakeServer; all are killed at the end."""
    servers: list[FakeServer] = []

    def start(config: dict) -> FakeServer:
        workdir = tmp_path / f"server{len(servers)}"
        workdir.mkdir()
        server = FakeServer(workdir, config)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.kill()
