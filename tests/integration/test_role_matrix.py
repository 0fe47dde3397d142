"""The role matrix as an auditor checks it: every route the console serves, asked by a
user of every role. A role the matrix refuses gets 403 and nothing is read into the audit
or changed; a role it allows is never refused. Routes outside the declared endpoints
(which the guard wraps) would escape this, so there are none."""
from __future__ import annotations

import re

import pytest

from console.endpoints import ENDPOINTS
from people.roles import Role, may
from recorder.watchdog.gate import GateClosed
from tests.console_kit import console
from tests.db_snapshot import snapshot

SAMPLE_PATH_VALUES = {"case_id": "C-1", "attempt_id": "a" * 32, "import_id": "1", "phone_id": "1", "flag": "care", "code": "en", "username": "nobody.here",
                      "entry_id": "1", "campaign_id": "1", "action": "pause", "qc_item_id": "1",
                      "template_id": "1", "item_id": "1", "visit_id": "1", "attachment_id": "1",
                      "week": "2026-W48", "chart": "recovery", "complaint_id": "1"}


async def closed_gate(case_id, number, *, requested_by=None, collector=None):
    raise GateClosed("the test's gate is closed")


@pytest.fixture
async def running(db, accounts):
    async with console(db, accounts, dial=closed_gate) as app:
        yield app


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PATH_VALUES[m.group(1)], path)


async def test_every_route_is_a_declared_endpoint(running):
    declared = {(e.method, e.path) for e in running.app[ENDPOINTS]}
    served = {(r.method, r.resource.canonical) for r in running.app.router.routes() if r.method != "HEAD"}
    assert served == declared


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_gets_exactly_what_the_matrix_gives(running, db, role):
    browser = await running.browser(role)
    checked = 0
    sign_outs = {("DELETE", "/api/session"), ("POST", "/logout")}
    signing_out_last = sorted(running.app[ENDPOINTS], key=lambda e: (e.method, e.path) in sign_outs)
    for endpoint in signing_out_last:
        if endpoint.permission is None:
            continue
        path = concrete(endpoint.path)
        if "?" not in path and endpoint.method in ("GET", "POST"):
            path += "?why=role+matrix+test&case=C-1"
        before = await snapshot(db)
        resp = await browser.request(endpoint.method, path)
        where = (role.value, endpoint.method, endpoint.path, resp.status)
        if may(role, endpoint.permission):
            assert resp.status not in (401, 403), where
        else:
            assert resp.status == 403, where
            assert await snapshot(db) == before, where
        checked += 1
    assert checked >= 10
