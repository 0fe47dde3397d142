"""Demo cases: one per carrier outcome, numbers from the sandbox carrier's number plan.

Carrier plan: see asterisk_conf/templates/carrier/extensions.conf (and docs/architecture.md);
the demo uses 15555S short calls, 15552 busy, 15553 no answer, 15554 congestion.
"""
from __future__ import annotations

from dataclasses import dataclass

from storage import repositories as repo
from storage.clock import Clock
from storage.db import Database
from storage.models import Case


@dataclass(frozen=True, slots=True)
class DemoCase:
    case_id: str
    debtor: str
    number: str
    expect: str  # the outcome the carrier will produce


DEMO_CASES = (
    DemoCase("DEMO-0001", "Zhang Wei", "15555300001", "answered"),
    DemoCase("DEMO-0002", "Li Na", "15552000002", "busy"),
    DemoCase("DEMO-0003", "Wang Fang", "15553000003", "no_answer"),
    DemoCase("DEMO-0004", "Liu Yang", "15554000004", "congestion"),
    DemoCase("DEMO-0005", "Chen Jie", "19990000005", "invalid"),
)


DEMO_CLIENT = "demo-telecom"
DEMO_CALLER_ID = "4008001000"  # the client's approved work number


async def seed_demo_cases(db: Database, clock: Clock) -> list[DemoCase]:
    """Insert the demo cases that are not there yet; returns all of them."""
    async with db.session() as session:
        await repo.approve_caller_id(session, DEMO_CLIENT, DEMO_CALLER_ID)
        for demo in DEMO_CASES:
            try:
                await repo.get_case(session, demo.case_id)
                continue
            except repo.NotFound:
                pass
            await repo.add_case(
                session,
                Case(id=demo.case_id, client=DEMO_CLIENT, debtor_name=demo.debtor,
                     region="Beijing", timezone="Asia/Shanghai", created_at=clock()),
                [repo.NewPhone(number=demo.number)],
            )
    return list(DEMO_CASES)
