"""The abuse measures (many accounts, one address) for bench/run.py (--only-abuse runs just these, about a minute):

1. login latency (p50, p99) while 200 registrations arrive at once from 200 client addresses (TRUST_PROXY and
   X-Forwarded-For spread them, so REGISTRATIONS_PER_ADDRESS_PER_HOUR, on at its default, refuses none), beside
   the idle login latency measured just before on the same service: BCRYPT_ROUNDS=10, as the red team's run,
   and BCRYPT_QUEUE_MAX at its default (64). Logins come one after another on one keep-alive connection from
   one address, so the login limits (this row's own traffic) are off. Before the bcrypt queue was bounded the
   median login took 3.1 s during such a burst (0.065 s idle); now sign-ups may fill half the queue and are
   refused past it with a 503 at once, and logins wait ahead of them. Latency is of the logins answered 200;
   the row counts 503s.
2. the peak resident memory above idle while the largest accepted photo is processed: a PNG crafted with zlib,
   8-bit RGBA 5792x5792 (33.5 Mpx: 128 MiB decoded at 4 bytes a pixel, the MAX_PHOTO_DECODE_BYTES default),
   uploaded with PUT /users/:id; peak from VmHWM reset through /proc/<pid>/clear_refs. Target <= 160 MiB.
"""

import http.client
import json
import os
import sys
import threading
import time

import seed
from photo_memory import CASES, crafted_png
from photos import BOUNDARY, PeakMemory, percentile
from system import RESULTS, NoiseWatch, free_port, rss_mib, service_variables, wait_for_port

REGISTRATIONS = 200
IDLE_LOGINS = 60
ABUSE_ROUNDS = 10
LARGEST_PHOTO = "rgba8-5792"


def start(bench, name: str, rounds: int, **extra) -> tuple:
    """The service with the bench's usual settings (bench/run.py start_service) and this measure's own."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in service_variables()}
    env.update(
        {
            "LOG_LEVEL": "INFO",
            "BCRYPT_ROUNDS": str(rounds),
            "JWT_SECRET": "bench-secret-" + "0" * 40,
            "ADMIN_EMAIL": seed.ADMIN_EMAIL,
            "ADMIN_PASSWORD": seed.PASSWORD,
            "ADMIN_NAME": "Bench Admin",
            **extra,
        }
    )
    process = bench.processes.start(
        [sys.executable, "run.py", "--port", str(port)], log_path=os.path.join(RESULTS, f"service-{name}.log"), env=env
    )
    wait_for_port(port, process)
    return process, port


def post(port: int, path: str, body: dict, headers: dict = None, connection=None) -> tuple:
    """(status, seconds) of one JSON POST; a connection of its own unless one is given."""
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    try:
        connection.request(
            "POST",
            path,
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        response = connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        if own:
            connection.close()


def summary(samples: list) -> dict:
    """Status counts of (status, seconds) samples, and the latency of the answered ones (2xx: a 503 is quick)."""
    answered = [sample for sample in samples if 200 <= sample[0] < 300] or samples
    ms = [seconds * 1000 for _, seconds in answered]
    statuses = {}
    for status, _ in samples:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 0.5), 1),
        "p99_ms": round(percentile(ms, 0.99), 1),
        "max_ms": round(max(ms), 1),
        "statuses": statuses,
    }


def login_during_registrations(bench) -> dict:
    process, port = start(
        bench,
        "abuse-logins",
        ABUSE_ROUNDS,
        TRUST_PROXY="true",
        LOGIN_ATTEMPTS_LIMIT="0",
        LOGIN_ATTEMPTS_PER_ADDRESS="0",
    )
    try:
        client = seed.Client(port)
        seed.login(client, seed.ADMIN_EMAIL, wait_seconds=30)  # up, indexes made
        client.expect(
            201,
            "POST",
            "/auth/register",
            {"name": "Bench Login", "email": "bench-login@example.com", "password": seed.PASSWORD},
        )
        credentials = {"email": "bench-login@example.com", "password": seed.PASSWORD}
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for _ in range(3):  # warm: the dummy hash, the connection
            post(port, "/auth/login", credentials, connection=connection)
        bench.say(f"measure login_idle: {IDLE_LOGINS} logins one after another at BCRYPT_ROUNDS={ABUSE_ROUNDS}")
        watch = NoiseWatch(process.pid)
        idle = summary([post(port, "/auth/login", credentials, connection=connection) for _ in range(IDLE_LOGINS)])
        idle["other_cpu_share"] = watch.share()
        bench.say(
            f"measure login_during_registrations: logins while {REGISTRATIONS} registrations arrive at once "
            f"from {REGISTRATIONS} addresses"
        )
        go, registrations = threading.Event(), []

        def register(index: int) -> None:
            go.wait()
            address = f"10.{index // 250}.{index % 250}.7"
            registrations.append(
                post(
                    port,
                    "/auth/register",
                    {
                        "firstName": "Flood",
                        "lastName": str(index),
                        "email": f"flood-{index:04d}@example.com",
                        "password": seed.PASSWORD,
                    },
                    headers={"X-Forwarded-For": address},
                )
            )

        threads = [threading.Thread(target=register, args=(n,), daemon=True) for n in range(REGISTRATIONS)]
        for thread in threads:
            thread.start()
        watch = NoiseWatch(process.pid)
        go.set()
        started, logins = time.perf_counter(), []
        while any(thread.is_alive() for thread in threads) or len(logins) < 10:
            logins.append(post(port, "/auth/login", credentials, connection=connection))
        burst_seconds = time.perf_counter() - started
        for thread in threads:
            thread.join()
        during = summary(logins)
        during["other_cpu_share"] = watch.share()
        flood = summary(registrations)
        flood["seconds"] = round(burst_seconds, 2)
        connection.close()
        bench.raw["login_idle"], bench.raw["login_during_registrations"] = idle, during
        bench.raw["registrations_burst"] = flood
        print(
            f"  idle login p50 {idle['p50_ms']} ms, p99 {idle['p99_ms']} ms; during the burst p50 "
            f"{during['p50_ms']} ms, p99 {during['p99_ms']} ms {during['statuses']}; registrations "
            f"{flood['statuses']} in {flood['seconds']} s",
            flush=True,
        )
        return {"pid": process.pid, "rounds": ABUSE_ROUNDS}
    finally:
        bench.processes.stop(process)


def photo_peak_largest(bench) -> dict:
    process, port = start(bench, "abuse-photo", 4)
    try:
        client = seed.Client(port)
        seed.login(client, seed.ADMIN_EMAIL, wait_seconds=30)
        answer = client.expect(
            201,
            "POST",
            "/auth/register",
            {"name": "Bench Photo", "email": "bench-photo@example.com", "password": seed.PASSWORD},
        )
        data = crafted_png(*CASES[LARGEST_PHOTO])
        body = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
            f"Content-Type: image/png\r\n\r\n".encode()
            + data
            + f"\r\n--{BOUNDARY}--\r\n".encode()
        )
        width, height = CASES[LARGEST_PHOTO][:2]
        bench.say(
            f"measure photo_peak_largest: a {len(data) // 1024} KiB 8-bit RGBA PNG of {width}x{height}, "
            "the largest MAX_PHOTO_DECODE_BYTES accepts"
        )
        time.sleep(1.0)
        idle = rss_mib(process.pid)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        with PeakMemory(process.pid) as memory:
            started = time.perf_counter()
            connection.request(
                "PUT",
                f"/users/{answer['user']['id']}",
                body=body,
                headers={
                    "Authorization": f"Bearer {answer['tokens']['access']['token']}",
                    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                },
            )
            response = connection.getresponse()
            response.read()
            seconds = time.perf_counter() - started
        connection.close()
        time.sleep(0.5)
        out = {
            "status": response.status,
            "idle_rss_mib": round(idle, 1),
            "peak_rss_mib": round(memory.mib, 1),
            "peak_above_idle_mib": round(memory.mib - idle, 1),
            "exact_peak": memory.exact,
            "after_above_idle_mib": round(rss_mib(process.pid) - idle, 1),
            "upload_ms": round(seconds * 1000),
            "photo": LARGEST_PHOTO,
            "photo_bytes": len(data),
        }
        bench.raw["photo_peak_largest"] = out
        print(
            f"  {response.status} in {out['upload_ms']} ms; peak {out['peak_above_idle_mib']} MiB above idle "
            f"({idle:.0f} MiB), {out['after_above_idle_mib']} MiB above idle after",
            flush=True,
        )
        return out
    finally:
        bench.processes.stop(process)


def abuse_run(bench) -> dict:
    """Both measures, each on a service of its own."""
    return {"logins": login_during_registrations(bench), "photo": photo_peak_largest(bench)}


def abuse_rows(result: dict, add) -> None:
    """The rows of these measures, when they ran (bench/report.py rows)."""
    raw = result["raw"]
    idle, during, flood = (raw.get(k) for k in ("login_idle", "login_during_registrations", "registrations_burst"))
    if idle and during:
        add(
            f"POST /auth/login p50 (logins answered 200) while {REGISTRATIONS} registrations arrive from "
            f"{REGISTRATIONS} addresses (BCRYPT_ROUNDS={ABUSE_ROUNDS}), ms",
            during["p50_ms"],
            baseline=idle["p50_ms"],
            ratio=round(during["p50_ms"] / idle["p50_ms"], 2) if idle["p50_ms"] else None,
            target="reported (baseline: idle login, same run)",
            key="login_during_registrations",
            unit="ms",
            latency=f"p99 {during['p99_ms']:g} ms (idle p99 {idle['p99_ms']:g} ms); logins {during['statuses']}; "
            f"registrations {flood['statuses']} in {flood['seconds']:g} s",
            noise=during.get("other_cpu_share", 0),
        )
    photo = raw.get("photo_peak_largest")
    if photo:
        add(
            "peak resident memory above idle for the largest photo accepted (8-bit RGBA 5792x5792 PNG), MiB",
            photo["peak_above_idle_mib"],
            target="≤ 160 MiB",
            met=photo["status"] == 200 and photo["peak_above_idle_mib"] <= 160,
            key="photo_peak_largest",
            unit="MiB",
            latency=f"status {photo['status']}, {photo['upload_ms']} ms; idle {photo['idle_rss_mib']:g} MiB; "
            f"{photo['after_above_idle_mib']:g} MiB above idle after",
        )
