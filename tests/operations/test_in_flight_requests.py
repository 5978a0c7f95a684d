"""The count of requests in flight (AccountsApplication.in_flight), which run.py's SIGTERM drain waits on
(tests/operations/test_process.py drains a real process): every request is counted once, however it ends.

Guards found by mutation testing (docs/history/mutants.md, docs/history/mutation-testing.md): no test failed
when they broke. Each test was checked by breaking its guard and watching it fail (tools/guard_mutations.py
re-checks the hand-made mutations).
"""

import asyncio
import time

import pytest


@pytest.mark.gen_test
async def test_every_request_leaves_the_in_flight_count_at_zero(api, app):
    """Guard held by mutation testing: kills a request answered 404, 422 or 413 left counted in flight."""
    await api.get("/health")
    await api.get("/no/such/route")
    await api.post("/auth/login", json={})
    await api.post("/auth/login", body=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert app.in_flight == 0


@pytest.fixture
def held_forgot_password(services, monkeypatch):
    """forgot-password requests held in the service until released: (entered, release). Each request that
    reaches the service releases `entered` once."""
    entered, release = asyncio.Semaphore(0), asyncio.Event()

    async def held(email):
        entered.release()
        await release.wait()

    monkeypatch.setattr(services.auth, "forgot_password", held)
    return entered, release


@pytest.mark.gen_test
async def test_a_client_that_hangs_up_mid_request_is_uncounted_once(api, app, held_forgot_password, http_port):
    """Guard held by mutation testing: kills a request uncounted twice when its client hangs up (on_connection_close,
    then on_finish)."""
    # The SIGTERM drain waits for in_flight to reach 0: counted twice down, it would stop waiting early.
    entered, release = held_forgot_password
    body = b'{"email": "mark@example.com"}'
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    writer.write(
        b"POST /auth/forgot-password HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    await writer.drain()
    await asyncio.wait_for(entered.acquire(), 10)
    writer.close()
    deadline = time.monotonic() + 10
    while app.in_flight != 0 and time.monotonic() < deadline:  # the server notices the hang-up
        await asyncio.sleep(0.01)
    assert app.in_flight == 0
    release.set()  # the handler now finishes its answer to nobody
    await api.get("/health")  # by its answer, the woken handler has run to its end
    assert app.in_flight == 0


@pytest.mark.gen_test
async def test_requests_in_flight_together_are_each_counted(api, app, held_forgot_password):
    """Guard held by mutation testing: kills requests in flight at once not each counted."""
    # What the SIGTERM drain waits on: three requests held at once are three, and each answer takes one away.
    entered, release = held_forgot_password
    asking = [
        asyncio.ensure_future(api.post("/auth/forgot-password", json={"email": f"u{n}@example.com"})) for n in range(3)
    ]
    for _ in asking:
        await asyncio.wait_for(entered.acquire(), 10)
    assert app.in_flight == 3
    release.set()
    assert [(await answer).code for answer in asking] == [204, 204, 204]
    assert app.in_flight == 0
