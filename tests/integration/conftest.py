"""Fixtures of the console's integration tests: users of every role with case C-1, and the
console app running on them (a test module may override either)."""
from __future__ import annotations

import pytest

from tests.console_kit import console, people_and_one_case


@pytest.fixture
async def accounts(db, clock):
    return await people_and_one_case(db, clock)


@pytest.fixture
async def running(db, accounts):
    async with console(db, accounts) as app:
        yield app
