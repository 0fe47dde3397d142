"""Gate changes are audited and POSTed to the alarm webhook (a local aiohttp server)."""
from __future__ import annotations

import asyncio

from aiohttp import web

from dunline.service import Service
from dunline.settings import load_settings
from recorder.watchdog.gate import GateChange, GateState
from storage import repositories as repo


async def test_a_gate_change_is_audited_and_sent_to_the_webhook(tmp_path, clock):
    received: list[dict] = []
    got = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        got.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/alarm", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    settings = load_settings(env={}, overrides={
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"},
        "recording": {"archive_dir": str(tmp_path / "archive")},
        "watchdog": {"webhook_url": f"http://127.0.0.1:{port}/alarm"}})
    service = Service(settings, clock=clock)
    await service.db.migrate()
    try:
        await service._gate_changed(GateChange(clock(), False, GateState.CLOSED, "ami_link: AMI link down"))
        await asyncio.wait_for(got.wait(), 5)
        assert received == [{"event": "gate.closed", "at": clock().isoformat(),
                             "reason": "ami_link: AMI link down"}]
        async with service.db.session() as s:
            [event] = [e for e in await repo.audit_events(s) if e.action == "gate.closed"]
        assert event.actor == "watchdog" and event.detail["reason"] == "ami_link: AMI link down"
    finally:
        await service.db.close()
        await runner.cleanup()
