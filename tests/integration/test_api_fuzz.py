"""The whole JSON API fuzzed from its own OpenAPI document (schemathesis, on loopback):
every operation, with the API token of a role that may call it, gets generated valid and
invalid parameters and bodies; no answer may be a 500 (an answer of 5xx must be one the
document declares, e.g. 503 when no archive is wired)."""
from __future__ import annotations

import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, settings

from console.api import make_app
from people.roles import Permission, Role, may
from recorder.archive import FilesystemArchive
from recorder.ledger import Signer
from recorder.ledger_store import Ledger
from recorder.witness import CheckpointWitness
from storage import repositories as repo
from tests.batch_files import csv_bytes, good_row
from tests.console_kit import cheap_accounts, deps_for, seed_users, user_of
from tests.integration.test_retrieval import seed_archive
from tests.live_console import LiveConsole


async def prepare(db, clock):
    """Users of every role (an API token each), cases with recordings (C-1, C-2, C-EMPTY), a batch."""
    from cases.batches import BatchImporter
    from dialer.originate import DialError

    ledger = Ledger(db, Signer(Ed25519PrivateKey.generate()), clock, checkpoint_every=5,
                    witness=CheckpointWitness(FilesystemArchive(db_dir(db) / "archive"), retain_years=10))
    archive = await seed_archive(db, ledger, clock, db_dir(db))
    accounts = cheap_accounts(db, clock)
    await seed_users(accounts)
    importer = BatchImporter(db, clock)
    data = csv_bytes([good_row(n) for n in range(1, 6)])
    await importer.run(await importer.start(client="cu", filename="b.csv", data=data, by="t"), data)
    async with db.session() as s:
        await repo.approve_caller_id(s, "cu", "4008001000")
    TOKENS.update({role: await accounts.issue_token(user_of(role), "fuzz", by="test") for role in Role})

    async def no_such_line(case_id, number):
        raise DialError("the fuzz has no PBX")

    return {"accounts": accounts, "dial": no_such_line, "store": archive, "ledger": ledger}


def db_dir(db):
    from pathlib import Path

    return Path(db.engine.url.database).parent


TOKENS: dict[Role, str] = {}


def token_for(permission: str | None) -> str:
    """The token of the first role that may (the supervisor's when anyone may)."""
    if permission is None:
        return TOKENS[Role.SUPERVISOR]
    role = next(r for r in (Role.SUPERVISOR, Role.COMPLIANCE, Role.ADMIN, *Role) if may(r, Permission(permission)))
    return TOKENS[role]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with LiveConsole(tmp_path_factory.mktemp("fuzz"), prepare) as console:
        yield console


def _document() -> dict:
    """The document as the app serves it (built from the same declarations, no server needed)."""
    from console.endpoints import ENDPOINTS
    from console.openapi import document

    return document(make_app(deps_for(None, None, 1))[ENDPOINTS])  # type: ignore[arg-type]


schema = schemathesis.openapi.from_dict(_document())


def test_the_served_document_is_the_one_fuzzed(live):
    import json
    import urllib.request

    request = urllib.request.Request(f"{live.base}/api/openapi.json",
                                     headers={"Authorization": f"Bearer {TOKENS[Role.QC]}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert json.load(resp) == json.loads(json.dumps(_document()))


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_500(case, live):
    operation = case.operation.definition.raw
    token = token_for(operation.get("x-permission"))
    response = case.call(base_url=live.base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    declared = {int(s) for s in operation.get("responses", {}) if s.isdigit()}
    assert response.status_code != 500, (case.method, case.formatted_path, response.text[:500])
    assert response.status_code < 500 or response.status_code in declared, (case.method, case.formatted_path,
                                                                           response.status_code, response.text[:300])
