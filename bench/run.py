"""The accounts service benchmark: python bench/run.py [--duration 10] [--connections 32].

One run measures, with wrk as the load generator on 127.0.0.1:
  1. the machine's bcrypt ceiling (cores / one cost-12 checkpw, median of several, in this process);
  2. two baselines started here (bench/baselines.py): "bare" Tornado writing a small JSON object,
     and "minimal" Tornado doing only what GET /users/user cannot avoid;
  3. the service (`python run.py`, embedded store, BCRYPT_ROUNDS=12, every limit on its traffic off) seeded
     through its API with 100 users in 10 organisations: /health (interleaved with bare),
     /users/user (interleaved with minimal), /api/organisations, /users?limit=10 as admin,
     /auth/login, /health while 32 logins run, /auth/refresh-tokens, and its resident memory after;
  4. the service again at BCRYPT_ROUNDS=4 (seeding only: that measure never hashes) with 2,000
     users: GET /users/user, to show how the embedded store's cost grows;
  5. the embedded store's scaling (--scale, default 1,1000,10000 users): the service on a store
     seeded in-process (bench/seeded.py), GET /users/user and GET /api/organisations at each size,
     --scale-duration seconds each. --only-scale runs just this (about three minutes).
  6. photo uploads (bench/photos.py): a 4000x3000 camera JPEG of 3-5 MB, one at a time (latency,
     peak memory above idle), then 8 at once while /health is probed (--only-photos: just these).
  7. abuse (bench/abuse.py): login latency while 200 registrations arrive from 200 addresses, beside
     the idle login latency; the peak memory of the largest photo accepted (--only-abuse: just these).
The README's "Benchmark" section says how each measure is taken and why.

It prints a markdown table (measure, value, baseline, ratio, target, met) and writes it with all
the raw numbers as JSON to bench/results/latest.json (and the table to bench/results/latest.md).
Service logs go to bench/results/service-*.log. Every process it starts is stopped at the end,
on failure and on Ctrl-C too. These are benchmarks, not tests: nothing here fails on a number, but
any error answer (status 400 or more) to a measure stops the run with exit code 1 (a refused request
is no work done); --tiny runs every measure for a second, as tests/operations/test_bench.py does.
"""

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import seed  # noqa: E402
from abuse import abuse_run  # noqa: E402
from load import ErrorAnswers, ensure_wrk, parse_wrk, run_wrk, wrk_command  # noqa: E402
from photos import photo_run  # noqa: E402
from report import combine_slices, markdown, rows, summarise_profile  # noqa: E402
from system import (
    BENCH,
    NOISY,
    RESULTS,
    UNLIMITED,
    WRK_DIR,
    NoiseWatch,
    Processes,
    bcrypt_seconds,  # noqa: E402
    busy_fraction,
    free_port,
    machine,
    machine_cpu,
    own_cpu,
    rss_mib,
    service_variables,
    wait_for_port,
    wait_idle,
)

JWT_SECRET = "bench-secret-0123456789abcdef0123456789abcdef0123456789abcdef"
PROBE_PAUSE_MS = 10  # each /health probe connection waits this long between requests


class Bench:
    def __init__(self, options):
        self.o = options
        self.processes = Processes()
        self.tmp = tempfile.mkdtemp(prefix="accounts-bench-")
        self.raw = {}
        self.notes = []
        self.profiles = {}
        self.profile_pid = None  # the service process py-spy samples during each measure (--profile)

    def say(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    def file(self, name: str, lines) -> str:
        path = os.path.join(self.tmp, name)
        with open(path, "w") as out:
            out.write("\n".join(lines) + "\n")
        return path

    def measure(
        self,
        name,
        url,
        script="get.lua",
        args=(),
        connections=None,
        duration=None,
        warmup=True,
        timeout=10.0,
        profile=True,
        pid=None,
    ) -> dict:
        connections = connections or self.o.connections
        duration = duration or self.o.duration
        if warmup and self.o.warmup > 0:
            run_wrk(url, script, args, connections, self.o.warmup, timeout)
        self.say(f"measure {name}: {connections} connections, {duration:g}s")
        spy = self.start_profile(name, duration) if profile else None
        watch = NoiseWatch(pid)
        result = run_wrk(url, script, args, connections, duration, timeout)
        if spy:
            self.finish_profile(name, spy)
        result["other_cpu_share"] = watch.share()
        self.raw[name] = result
        self.report(name, result)
        return result

    def measure_pair(self, baseline: dict, target: dict, duration=None) -> tuple:
        """A baseline and the measure compared with it, interleaved: `--slices` turns of each (10 s in
        all per measure by default: 5 x 2 s), so that both see the same machine. A small VM's
        throughput drifts by 10-20% from one 10 s window to the next even when nothing else runs, which
        two back-to-back runs would turn into a ratio that means nothing."""
        duration = duration or self.o.duration
        slices = max(1, min(self.o.slices, duration))
        each = duration // slices  # wrk takes whole seconds
        for side in (baseline, target):
            if self.o.warmup > 0:
                run_wrk(side["url"], "get.lua", side.get("args", ()), self.o.connections, self.o.warmup)
        self.say(
            f"measure {baseline['name']} and {target['name']}, interleaved: {slices} x "
            f"{each}s each, {self.o.connections} connections"
        )
        spy = self.start_profile(target["name"], 2 * duration + slices)
        parts = {baseline["name"]: [], target["name"]: []}
        for _ in range(slices):
            for side in (baseline, target):
                watch = NoiseWatch(side["pid"], spy.pid if spy else None)
                part = run_wrk(side["url"], "get.lua", side.get("args", ()), self.o.connections, each)
                part["other_cpu_share"] = watch.share()
                parts[side["name"]].append(part)
        if spy:
            self.finish_profile(target["name"], spy)
        out = []
        for side in (baseline, target):
            result = combine_slices(parts[side["name"]])
            self.raw[side["name"]] = result
            self.report(side["name"], result)
            out.append(result)
        return tuple(out)

    def report(self, name, result) -> None:
        line = f"  {name}: {result['rps']:,.1f} req/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms"
        if result.get("slices"):
            line += f" (slices: {', '.join(f'{r:,.0f}' for r in result['slices'])} req/s)"
        if result["other_cpu_share"] > NOISY:
            line += f" (other processes took {result['other_cpu_share']:.0%} of the machine meanwhile)"
            self.notes.append(
                f"{name}: other processes took {result['other_cpu_share']:.0%} of the machine during the measure"
            )
        if result["failed"]:
            line += f", {result['failed']} FAILED ({result['errors']})"
            self.notes.append(f"{name}: {result['failed']} failed requests {result['errors']}")
        print(line, flush=True)

    # -- profiling (--profile): py-spy samples the service while wrk runs --

    def start_profile(self, name, duration):
        if not self.o.profile or not self.profile_pid:
            return None
        path = os.path.join(RESULTS, f"profile-{name}.txt")
        return self.processes.start(
            [
                "py-spy",
                "record",
                "--pid",
                str(self.profile_pid),
                "--duration",
                str(int(duration)),
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                path,
            ],
            log_path=os.path.join(self.tmp, f"py-spy-{name}.log"),
        )

    def finish_profile(self, name, spy):
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        self.processes.stop(spy)
        path = os.path.join(RESULTS, f"profile-{name}.txt")
        if os.path.exists(path):
            self.profiles[name] = summarise_profile(path)
            top = ", ".join(f"{f['function']} {f['percent']}%" for f in self.profiles[name]["inclusive"][:6])
            print(f"  profile ({path}): {top}", flush=True)

    # -- processes under test --

    def start_baseline(self, kind: str) -> tuple:
        port = free_port()
        args = [sys.executable, os.path.join(BENCH, "baselines.py"), kind, "--port", str(port)]
        tokens = os.path.join(self.tmp, "minimal-tokens.txt")
        if kind == "minimal":
            args += ["--users", str(self.o.users), "--tokens-file", tokens, "--secret", JWT_SECRET]
        process = self.processes.start(args, log_path=os.path.join(RESULTS, f"baseline-{kind}.log"))
        wait_for_port(port, process)
        return process, f"http://127.0.0.1:{port}", tokens

    def start_service(self, name: str, rounds: int) -> tuple:
        port = free_port()
        # Only the settings chosen here: none of the caller's (MONGODB_URI would leave the embedded store).
        env = {k: v for k, v in os.environ.items() if k not in service_variables()}
        env.update(UNLIMITED)  # no limit may refuse the bench's own traffic (bench/system.py says why)
        env.update(self.o.service_env)
        env.update(
            {
                "LOG_LEVEL": "INFO",  # the default: every request writes its access line, as in production
                "BCRYPT_ROUNDS": str(rounds),
                "JWT_SECRET": JWT_SECRET,
                "ADMIN_EMAIL": seed.ADMIN_EMAIL,
                "ADMIN_PASSWORD": seed.PASSWORD,
                "ADMIN_NAME": "Bench Admin",
            }
        )
        log_path = os.path.join(RESULTS, f"service-{name}.log")
        process = self.processes.start([sys.executable, "run.py", "--port", str(port)], log_path=log_path, env=env)
        wait_for_port(port, process)
        return process, port

    def route_present(self, client, method, path, token=None, body=None) -> bool:
        status, answer = client.request(method, path, body, token)
        if status == 404:
            self.notes.append(f"{method} {path} answered 404: route not present, measure skipped")
            self.say(f"{method} {path} is not there yet (404): skipped")
            return False
        if status >= 400:
            raise RuntimeError(f"{method} {path}: {status} {answer}")
        return True

    def same_user_json(self, client, token, minimal_url, minimal_tokens) -> None:
        """The minimal baseline must answer what the service answers: the same keys, the same types."""
        _, service_user = client.request("GET", "/users/user", token=token)
        port = int(minimal_url.rsplit(":", 1)[1])
        with open(minimal_tokens) as tokens:
            _, minimal_user = seed.Client(port).request("GET", "/users/user", token=tokens.readline().strip())

        def shape(user):
            return {key: type(value).__name__ for key, value in (user or {}).items()}

        if shape(service_user) != shape(minimal_user):
            self.notes.append(
                f"minimal baseline's user JSON differs from the service's: "
                f"{shape(minimal_user)} vs {shape(service_user)}"
            )
            self.say("WARNING: the minimal baseline's user JSON has another shape than the service's")

    def drain(self, process) -> None:
        """Logins wrk left behind still hash after it disconnects; let them finish before going on."""
        waited = wait_idle(process.pid)
        self.say(f"  service idle again after {waited} s")

    # -- the main run: 100 users, baselines measured right before the measures compared with them --

    def service_run(self) -> dict:
        o = self.o
        bare, bare_url, _ = self.start_baseline("bare")
        minimal, minimal_url, minimal_tokens = self.start_baseline("minimal")
        process, port = self.start_service("main", rounds=self.o.rounds)
        base = f"http://127.0.0.1:{port}"
        client = seed.Client(port)
        out = {"pid": process.pid}
        try:
            self.say(
                f"seeding the service: {o.users - 1} registrations at BCRYPT_ROUNDS={o.rounds}, the admin, "
                f"{o.organisations} organisations"
            )
            started = time.monotonic()
            admin = seed.login(client, seed.ADMIN_EMAIL, wait_seconds=30)
            users = [admin] + seed.register_users(client, 1, o.users - 1, concurrency=8)
            have_orgs = self.route_present(client, "GET", "/api/organisations", token=users[1]["access"])
            if have_orgs:
                seed.organise(client, users, o.organisations)
            out["seed_seconds"] = round(time.monotonic() - started, 1)
            self.say(f"  seeded in {out['seed_seconds']} s")
            access = self.file("access.txt", [u["access"] for u in users])
            emails = self.file("emails.txt", [u["email"] for u in users])
            # A refresh token per connection, from the registrations (not the admin's), and spares: wrk
            # calls request() once before the run to check the script, which takes one from the pool.
            refresh = self.file("refresh.txt", [u["refresh"] for u in users[1 : o.connections + 5]])
            self.profile_pid = process.pid
            have_current_user = self.route_present(client, "GET", "/users/user", token=users[1]["access"])
            if have_current_user:
                self.same_user_json(client, users[1]["access"], minimal_url, minimal_tokens)

            # Each baseline interleaved with the measure compared with it, so both see the same machine.
            self.measure_pair(
                {"name": "bare", "url": f"{bare_url}/health", "pid": bare.pid},
                {"name": "health", "url": f"{base}/health", "pid": process.pid},
            )
            self.processes.stop(bare)
            if have_current_user:
                self.measure_pair(
                    {
                        "name": "minimal",
                        "url": f"{minimal_url}/users/user",
                        "args": [minimal_tokens],
                        "pid": minimal.pid,
                    },
                    {"name": "users_user", "url": f"{base}/users/user", "args": [access], "pid": process.pid},
                )
            self.processes.stop(minimal)
            if have_orgs:
                self.measure("organisations", f"{base}/api/organisations", args=[access], pid=process.pid)
            if self.route_present(client, "GET", "/users?limit=10", token=admin["access"]):
                self.measure(
                    "users_list",
                    f"{base}/users?limit=10",
                    args=[self.file("admin.txt", [admin["access"]])],
                    pid=process.pid,
                )
            self.measure(
                "login",
                f"{base}/auth/login",
                script="login.lua",
                args=[emails, seed.PASSWORD],
                warmup=False,
                timeout=60,
                pid=process.pid,
            )
            self.drain(process)
            self.health_under_logins(base, emails, process.pid)
            self.drain(process)
            # Last: every refresh leaves its used token behind (kept for theft detection), and the
            # stand-in scans whole collections, so it would slow whatever ran after it.
            self.measure(
                "refresh",
                f"{base}/auth/refresh-tokens",
                script="refresh.lua",
                args=[refresh],
                warmup=False,
                pid=process.pid,
            )
            self.drain(process)
            out["rss_mib"] = round(rss_mib(process.pid), 1)
            self.say(f"service resident memory after the run: {out['rss_mib']} MiB")
        finally:
            self.profile_pid = None
            out["exit_code"] = self.processes.stop(process)
            self.processes.stop(bare)
            self.processes.stop(minimal)
        return out

    def health_under_logins(self, base, emails, pid) -> None:
        o = self.o
        watch = NoiseWatch(pid)
        self.say(
            f"measure health_under_logins: /health probed by 2 connections (pause {PROBE_PAUSE_MS} ms) "
            f"while {o.connections} connections log in"
        )
        logins = self.processes.start(
            wrk_command(f"{base}/auth/login", "login.lua", [emails, seed.PASSWORD], o.connections, o.duration + 2, 60),
            cwd=WRK_DIR,
            capture=True,
        )
        try:
            time.sleep(1.0)  # every login connection has a request in flight
            spy = self.start_profile("health_under_logins", o.duration)
            probe = run_wrk(f"{base}/health", "probe.lua", [PROBE_PAUSE_MS], connections=2, duration=o.duration)
            if spy:
                self.finish_profile("health_under_logins", spy)
            stdout, _ = logins.communicate(timeout=o.duration + 90)
            login_stats = parse_wrk(stdout, o.connections, f"{base}/auth/login")
        finally:
            self.processes.stop(logins)
        probe["other_cpu_share"] = login_stats["other_cpu_share"] = watch.share()
        self.raw["health_under_logins"] = probe
        self.raw["logins_during_probe"] = login_stats
        if probe["other_cpu_share"] > NOISY:
            self.notes.append(
                f"health_under_logins: other processes took {probe['other_cpu_share']:.0%} "
                "of the machine during the measure"
            )
        print(
            f"  /health p50 {probe['p50_ms']} ms, p99 {probe['p99_ms']} ms, max {probe['max_ms']} ms "
            f"({probe['rps']} req/s); logins meanwhile {login_stats['rps']}/s",
            flush=True,
        )
        if probe["failed"] or login_stats["failed"]:
            self.notes.append(f"health_under_logins: failures probe={probe['errors']} logins={login_stats['errors']}")

    # -- the growth run: 2,000 users --

    def large_run(self) -> dict:
        """2,000 users created by the admin (POST /users: registration would also queue an email and
        open a session for each, and the stand-in's full scans make that quadratic: minutes), then
        --users of them, spread evenly, log in; GET /users/user as those. Seeding only hashes at
        BCRYPT_ROUNDS=4; the measure never hashes."""
        o = self.o
        process, port = self.start_service("large", rounds=4)
        client = seed.Client(port)
        out = {"pid": process.pid, "users": o.large_users}
        try:
            self.say(
                f"seeding {o.large_users} users at BCRYPT_ROUNDS=4 (admin POST /users), {o.users} of them logged in"
            )
            started = time.monotonic()
            admin = seed.login(client, seed.ADMIN_EMAIL, wait_seconds=30)
            if not self.route_present(client, "GET", "/users/user", token=admin["access"]):
                return out
            seed.create_users(client, admin["access"], 1, o.large_users - 1, concurrency=8)
            step = max(1, o.large_users // o.users)
            logged_in = seed.login_all(client, [seed.email_of(i) for i in range(step, o.large_users, step)][: o.users])
            out["logged_in"] = len(logged_in)
            out["seed_seconds"] = round(time.monotonic() - started, 1)
            self.say(f"  seeded in {out['seed_seconds']} s")
            access = self.file("access-large.txt", [u["access"] for u in logged_in])
            self.profile_pid = process.pid
            self.measure("users_user_large", f"http://127.0.0.1:{port}/users/user", args=[access], pid=process.pid)
            out["rss_mib"] = round(rss_mib(process.pid), 1)
        finally:
            self.profile_pid = None
            out["exit_code"] = self.processes.stop(process)
        return out

    # -- the embedded store's scaling: the same two reads at 1, 1,000 and 10,000 users --

    def scale_run(self) -> dict:
        """For each size: the service on a store seeded with that many users (bench/seeded.py), some of them
        logged in over HTTP, then GET /users/user and GET /api/organisations as them."""
        o = self.o
        out = {}
        for count in o.scale:
            port = free_port()
            env = {k: v for k, v in os.environ.items() if k not in service_variables()}
            env.update(UNLIMITED)
            env.update(o.service_env)
            env.update({"LOG_LEVEL": "INFO", "BCRYPT_ROUNDS": "4", "JWT_SECRET": JWT_SECRET})
            started = time.monotonic()
            process = self.processes.start(
                [sys.executable, os.path.join(BENCH, "seeded.py"), "--users", str(count), "--port", str(port)],
                log_path=os.path.join(RESULTS, f"service-scale-{count}.log"),
                env=env,
            )
            try:
                wait_for_port(port, process, timeout=300)
                client = seed.Client(port)
                step = max(1, count // o.connections)
                logged_in = seed.login_all(client, [seed.email_of(i) for i in range(0, count, step)][: o.connections])
                seconds = round(time.monotonic() - started, 1)
                self.say(f"scale: {count:,} users seeded, {len(logged_in)} logged in, in {seconds} s")
                tokens = self.file(f"access-scale-{count}.txt", [u["access"] for u in logged_in])
                reads = (("/users/user", "users_user"), ("/api/organisations", "organisations"))
                for path, key in reads:  # first alone: what one request costs, with no queue in front of it
                    self.raw[f"solo_{key}_{count}"] = self.alone(client, path, logged_in[-1]["access"])
                for path, key in reads:
                    self.measure(
                        f"scale_{key}_{count}",
                        f"http://127.0.0.1:{port}{path}",
                        args=[tokens],
                        duration=o.scale_duration,
                        timeout=30,
                        profile=False,
                        pid=process.pid,
                    )
                    self.drain(process)  # requests wrk gave up on would slow the next measure
                out[str(count)] = {
                    "seed_seconds": seconds,
                    "logged_in": len(logged_in),
                    "rss_mib": round(rss_mib(process.pid), 1),
                }
            finally:
                out.setdefault(str(count), {})["exit_code"] = self.processes.stop(process)
        return out

    def alone(self, client, path: str, token: str, times: int = 3) -> dict:
        """One request at a time: the median and the slowest of `times`, after one unrecorded."""
        client.expect(200, "GET", path, token=token)
        took = []
        for _ in range(times):
            started = time.monotonic()
            client.expect(200, "GET", path, token=token)
            took.append(round((time.monotonic() - started) * 1000, 1))
        self.say(f"  {path} alone: {sorted(took)} ms")
        return {"median_ms": sorted(took)[times // 2], "max_ms": max(took), "samples_ms": took}

    def run(self) -> dict:
        o = self.o
        started = time.monotonic()
        info = machine()
        self.say(
            f"machine: {info['cores']} cores, {info['cpu']}, {info['memory_gib']} GiB, "
            f"Python {info['python']}, Tornado {info['tornado']}"
        )
        busy = busy_fraction()
        if busy > 0.05 and o.wait_idle > 0:
            self.say(f"the machine is {busy:.0%} busy: waiting up to {o.wait_idle:g} s for it to be idle")
            deadline, quiet = time.monotonic() + o.wait_idle, 0
            while time.monotonic() < deadline and quiet < 3:
                busy = busy_fraction()
                quiet = quiet + 1 if busy <= 0.05 else 0
        if busy > 0.10:
            self.say(f"WARNING: the machine is {busy:.0%} busy before the run: other processes will skew it")
        cpu_before, own_before = machine_cpu(), own_cpu()
        bcrypt = large = None
        service = {}
        if not o.only_photos:
            bcrypt = bcrypt_seconds(o.rounds, 1 if o.only_scale else o.bcrypt_samples)
            self.say(
                f"bcrypt cost {o.rounds}: {bcrypt['seconds'] * 1000:.0f} ms per check; ceiling "
                f"{bcrypt['ceiling_per_s']} logins/s on {bcrypt['cores']} cores "
                f"({bcrypt['parallel_per_s']}/s measured with {bcrypt['cores']} threads)"
            )
            service = self.service_run() if not o.only_scale else {}
            large = self.large_run() if o.large_users and not o.only_scale else None
        scale = self.scale_run() if o.scale and not o.only_photos else None
        photos = photo_run(self) if o.photo_uploads and not o.only_scale else None
        abuse = abuse_run(self) if o.abuse and not o.only_scale else None
        elapsed = time.monotonic() - started
        cpu_after, own_after = machine_cpu(), own_cpu()
        others = max(0.0, (cpu_after["busy"] - cpu_before["busy"]) - (own_after - own_before))
        noise = {
            "busy_before_run": round(busy, 3),
            "other_cpu_seconds": round(others, 1),
            "other_cpu_share": round(others / (elapsed * info["cores"]), 3),
            "steal_seconds": round(cpu_after["steal"] - cpu_before["steal"], 1),
        }
        if noise["other_cpu_share"] > 0.02 or noise["steal_seconds"] > 1:
            self.notes.append(
                f"other processes used {others:.0f} CPU-seconds "
                f"({noise['other_cpu_share']:.0%} of the machine) during the run and the "
                f"hypervisor stole {noise['steal_seconds']} s: numbers are skewed, rerun on an idle machine"
            )
        if o.profile:
            self.notes.append(
                "profiled run (--profile): py-spy sampled the service during its measures, "
                "which costs it some throughput"
            )
        return {
            "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": info,
            "settings": {
                "duration_s": o.duration,
                "connections": o.connections,
                "warmup_s": o.warmup,
                "users": o.users,
                "organisations": o.organisations,
                "large_users": o.large_users,
                "slices": o.slices,
                "scale": o.scale,
                "scale_duration_s": o.scale_duration,
                "only_scale": o.only_scale,
                "photo_uploads": o.photo_uploads,
                "only_photos": o.only_photos,
                "bcrypt_rounds": o.rounds,
                "tiny": o.tiny,
                "limits_off": UNLIMITED,
                "wrk_threads": 1,
                "health_probe": {"connections": 2, "pause_ms": PROBE_PAUSE_MS},
                "profile": o.profile,
            },
            "bcrypt": bcrypt,
            "service": service,
            "large": large,
            "scale": scale,
            "photos": photos,
            "abuse": abuse,
            "raw": self.raw,
            "profiles": self.profiles,
            "noise": noise,
            "notes": self.notes,
            "seconds": round(time.monotonic() - started, 1),
        }


# --tiny: each measure runs, for a second, on the fewest users it takes; logins hash at cost 4.
TINY = {
    "duration": 1,
    "connections": 4,
    "slices": 1,
    "warmup": 0,
    "users": 10,
    "organisations": 2,
    "large_users": 20,
    "scale": [1, 20],
    "scale_duration": 1,
    "bcrypt_samples": 1,
    "photo_uploads": 1,
    "rounds": 4,
    "abuse": False,
}


def _sizes(raw: str) -> list:
    sizes = [int(part) for part in raw.split(",") if part.strip()]
    if any(size < 0 for size in sizes):
        raise argparse.ArgumentTypeError("sizes are 0 or more")
    return [size for size in sizes if size > 0]


def _assignment(raw: str) -> tuple:
    name, equals, value = raw.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {raw!r}")
    return name, value


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the accounts service against two baselines with wrk.")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measure (10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument(
        "--slices",
        type=int,
        default=5,
        help="turns a baseline and its measure take, interleaved, within --duration each (5)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="unrecorded seconds before each GET measure (1; 0: none)")
    parser.add_argument("--users", type=int, default=100, help="users seeded for the main run (100)")
    parser.add_argument("--organisations", type=int, default=10, help="organisations they are split into (10)")
    parser.add_argument("--large-users", type=int, default=2000, help="users for the growth measure (2000; 0 skips it)")
    parser.add_argument(
        "--scale",
        type=_sizes,
        default=[1, 1000, 10000],
        metavar="N,N,...",
        help="store sizes for the embedded-store scaling measure (1,1000,10000; 0 skips it)",
    )
    parser.add_argument("--scale-duration", type=int, default=8, help="seconds per scaling measure (8)")
    parser.add_argument("--only-scale", action="store_true", help="run only the scaling measure")
    parser.add_argument("--bcrypt-samples", type=int, default=5, help="bcrypt checks timed for the ceiling (5)")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait up to this long for the machine to be idle (under 5%% busy for 3 s)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the service with py-spy during each measure (pip install py-spy); "
        "writes bench/results/profile-*.txt and the top functions into the JSON",
    )
    parser.add_argument(
        "--photo-uploads",
        type=int,
        default=20,
        help="photo uploads timed one at a time (20; 0 skips the photo measures)",
    )
    parser.add_argument("--only-photos", action="store_true", help="run only the photo measures")
    parser.add_argument(
        "--no-abuse",
        dest="abuse",
        action="store_false",
        help="skip the abuse measures (bench/abuse.py: logins during a registration burst, "
        "the largest photo's peak memory)",
    )
    parser.add_argument("--only-abuse", action="store_true", help="run only the abuse measures (about a minute)")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="every measure but the abuse ones, as small as it goes (seconds, not figures): checks "
        "that the bench runs and that no measure is answered with errors (tests/operations/test_bench.py)",
    )
    parser.add_argument(
        "--service-env",
        type=_assignment,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for every service the bench starts, over its own (repeatable); e.g. "
        "LOGIN_ATTEMPTS_PER_ADDRESS=3 shows the bench stopping at the first refused request",
    )
    parser.add_argument("--out", default=os.path.join(RESULTS, "latest.json"), help="where to write the JSON")
    options = parser.parse_args(argv)
    options.rounds = 12
    options.service_env = dict(options.service_env)
    if options.tiny:
        options.__dict__.update(TINY)
    if options.users < options.connections + 5 or options.users % options.organisations:
        parser.error("--users must exceed --connections and be a multiple of --organisations")

    if options.only_abuse:  # everything else off: the photo-only path with no photo uploads
        options.only_photos, options.photo_uploads, options.abuse = True, 0, True
    options.slices = max(1, min(options.slices, options.duration))
    os.makedirs(RESULTS, exist_ok=True)
    ensure_wrk()
    if options.profile and not shutil.which("py-spy"):
        parser.error("--profile needs py-spy: pip install py-spy")
    bench = Bench(options)
    # Ctrl-C, SIGTERM and a closed terminal all end the run through the finally below, which stops
    # every process. Set explicitly: a shell starting the bench in the background ignores SIGINT.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        result = bench.run()
    except KeyboardInterrupt:
        print("interrupted: stopping every process the bench started", file=sys.stderr)
        return 130
    except (ErrorAnswers, seed.SeedError) as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 1
    finally:
        bench.processes.stop_all()
        shutil.rmtree(bench.tmp, ignore_errors=True)
    table_rows = rows(result)
    result["table"] = table_rows
    text = markdown(result, table_rows)
    os.makedirs(os.path.dirname(os.path.abspath(options.out)), exist_ok=True)
    with open(options.out, "w") as out:
        json.dump(result, out, indent=2)
    with open(os.path.splitext(options.out)[0] + ".md", "w") as out:
        out.write(text)
    print()
    print(text)
    print(f"written: {options.out} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
