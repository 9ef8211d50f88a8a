"""The example queue service (examples/queue_service.py) under load, stopped by SIGTERM.

The real server process runs on uvicorn; 200 concurrent httpx clients post
transfers while it runs, and the test sends SIGTERM once the service has
accepted far more transfers than it can process before its drain deadline.
Then every transfer the service accepted (answered 202) must be in its
ledger exactly once, processed or handed back; nothing it refused may be
there; the balances must add up; and the process must exit within the drain
deadline (plus uvicorn's one second of graceful shutdown and slack for a
loaded machine).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICE = ROOT / "examples" / "queue_service.py"

CLIENTS = 200
WORKERS = 2
LATENCY = 0.1  # seconds per transfer: the service processes 20 per second
DRAIN = 3.0
GRACEFUL = 1.0  # uvicorn's timeout_graceful_shutdown in the example
SLACK = 6.0  # process start-up of the shutdown path on a loaded machine
ACCOUNTS = 20
TARGET = 400  # accepted transfers before SIGTERM: 20 s of work

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX"),
]


@pytest.fixture
def anyio_backend() -> str:
    # The clients' event loop; the server is a process of its own.
    return "asyncio"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_until_up(client: httpx.AsyncClient) -> None:
    with anyio.fail_after(60):
        while True:
            try:
                response = await client.get("/stats")
            except httpx.TransportError:
                await anyio.sleep(0.05)
                continue
            assert response.status_code == 200
            return


async def test_sigterm_under_load_loses_and_repeats_nothing(tmp_path: Path) -> None:
    port = _free_port()
    ledger_path = tmp_path / "ledger.jsonl"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    server = await anyio.open_process(
        [
            sys.executable, str(SERVICE), "--port", str(port),
            "--ledger", str(ledger_path), "--accounts", str(ACCOUNTS),
            "--workers", str(WORKERS), "--latency", str(LATENCY),
            "--drain", str(DRAIN), "--maxsize", "5000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )  # fmt: skip
    loaded = anyio.Event()  # TARGET transfers accepted
    accepted: set[str] = set()
    refused: set[str] = set()
    unknown: set[str] = set()  # the connection failed: sent or not, who knows
    stop_sending = anyio.Event()
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits
        ) as client:
            await _wait_until_up(client)
            started = time.monotonic()

            async def send(me: int) -> None:
                sent = 0
                while not stop_sending.is_set():
                    transfer_id = f"c{me}-{sent}"
                    sent += 1
                    transfer = {
                        "id": transfer_id,
                        "source": (me + sent) % ACCOUNTS,
                        "target": (me + 2 * sent + 1) % ACCOUNTS,
                        "amount": 1 + sent % 7,
                    }
                    try:
                        response = await client.post("/transfers", json=transfer)
                    except httpx.TransportError:
                        unknown.add(transfer_id)
                        return  # the server is going away
                    if response.status_code == 202:
                        accepted.add(transfer_id)
                        if len(accepted) >= TARGET:
                            loaded.set()
                    else:
                        assert response.status_code == 503, response.text
                        refused.add(transfer_id)

            async with anyio.create_task_group() as tg:
                for me in range(CLIENTS):
                    tg.start_soon(send, me)
                with anyio.fail_after(60):
                    await loaded.wait()
                server.send_signal(signal.SIGTERM)  # mid-load: the clients go on
                signalled = time.monotonic()
                with anyio.fail_after(DRAIN + GRACEFUL + SLACK + 30):
                    returncode = await server.wait()
                exited = time.monotonic()
                stop_sending.set()
    finally:
        if server.returncode is None:  # pragma: no cover - the test failed
            server.kill()
            with anyio.CancelScope(shield=True):
                await server.wait()
    assert server.stdout is not None and server.stderr is not None
    out = (await server.stdout.receive()).decode()
    err = b"".join([chunk async for chunk in server.stderr]).decode()
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert returncode in (0, -signal.SIGTERM), err
    assert "stopped:" in out, out + err
    assert exited - signalled <= DRAIN + GRACEFUL + SLACK, (
        f"exited {exited - signalled:.1f} s after SIGTERM; drain deadline {DRAIN} s"
    )

    records = [json.loads(line) for line in ledger_path.read_text().splitlines()]
    summary = records.pop()
    assert summary["outcome"] == "summary"
    processed = [r["id"] for r in records if r["outcome"] == "processed"]
    handed_back = [r["id"] for r in records if r["outcome"] == "handed back"]
    assert len(processed) + len(handed_back) == len(records), "no transfer failed"
    everything = processed + handed_back
    assert len(everything) == len(set(everything)), "a transfer came out twice"
    assert accepted <= set(everything), "an accepted transfer was lost"
    assert not set(everything) & refused, "a refused transfer was processed"
    assert set(everything) <= accepted | unknown
    assert summary["total"] == ACCOUNTS * 1_000, "the balances do not add up"
    assert summary["enqueued"] == len(everything)
    assert summary["processed"] == len(processed)
    assert summary["handed_back"] == len(handed_back)
    # The service processes at most WORKERS / LATENCY transfers a second:
    # whatever it accepted beyond that, over its whole life, was handed back.
    capacity = WORKERS / LATENCY * (exited - started + 1)
    if len(accepted) > capacity:
        assert handed_back, "the drain deadline handed nothing back"
    assert processed, "nothing was processed"
