"""The machine and the processes a benchmark run starts: ports, CPU use, memory, bcrypt timing."""

import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time

import seed

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
WRK_DIR = os.path.join(BENCH, "wrk")
RESULTS = os.path.join(BENCH, "results")


# ---- processes ----------------------------------------------------------------------------------


class Processes:
    """Every process the bench starts, so that all of them are stopped whatever happens."""

    def __init__(self):
        self.running = []

    def start(self, args, log_path=None, env=None, cwd=ROOT, capture=False) -> subprocess.Popen:
        out = subprocess.PIPE if capture else (open(log_path, "w") if log_path else subprocess.DEVNULL)
        # A session of its own: a Ctrl-C reaches the bench only, which then stops everything in order.
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if log_path else None,
            text=True,
            start_new_session=True,
        )
        if log_path:
            out.close()
        self.running.append(process)
        return process

    def stop(self, process, grace: float = 15.0) -> int:
        if process.poll() is None:
            try:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            except ProcessLookupError:
                pass
        if process in self.running:
            self.running.remove(process)
        return process.returncode

    def stop_all(self) -> None:
        for process in reversed(list(self.running)):
            self.stop(process, grace=5.0)


# Every limit that would refuse the bench's own traffic, off for each service it starts: it logs
# thousands of times into a hundred accounts from 127.0.0.1, registers and invites from there too, and
# queues a verification email per registration. A refused request (429) is not work done, and a measure
# counting it would report the speed of refusing. The last two are settings other branches add; an
# environment variable the service does not know is ignored, so they are set whether or not it knows them.
UNLIMITED = {
    "LOGIN_ATTEMPTS_LIMIT": "0",
    "LOGIN_ATTEMPTS_PER_ADDRESS": "0",
    "EMAILS_PER_ADDRESS_PER_HOUR": "0",
    "REGISTRATIONS_PER_ADDRESS_PER_HOUR": "0",
    "INVITATIONS_PER_ADDRESS_PER_HOUR": "0",
    "SEARCHES_PER_USER_PER_HOUR": "0",
}


def service_variables() -> set:
    """The environment variables the service reads (settings.py), and LOG_LEVEL."""
    sys.path.insert(0, ROOT)
    from settings import declared

    return {variable.env for _field, variable in declared()} | {"LOG_LEVEL"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(process.args)} exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout:.0f}s")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, timeout: float = 120.0) -> float:
    """Wait until a process has used under 5% of a core for a whole second; returns the seconds waited.
    Logins wrk left behind when it disconnected are still being hashed until then."""
    started = time.monotonic()
    quiet_since = None
    last = process_cpu_seconds(pid)
    while time.monotonic() - started < timeout:
        time.sleep(0.25)
        now = process_cpu_seconds(pid)
        if now - last < 0.25 * 0.05:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 1.0:
                break
        else:
            quiet_since = None
        last = now
    return round(time.monotonic() - started, 1)


def machine_cpu() -> dict:
    """Busy and steal CPU seconds of the whole machine so far (from /proc/stat)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    tick = os.sysconf("SC_CLK_TCK")
    return {"busy": (user + nice + system + irq + softirq) / tick, "steal": steal / tick}


def own_cpu() -> float:
    """CPU seconds used by this process and every child it has waited for (wrk, servers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


NOISY = 0.05  # a measure during which other processes used more of the machine than this is flagged


class NoiseWatch:
    """CPU the rest of the machine used while something ran: all busy time, less this process, the
    children it waited for meanwhile (wrk) and the server under test."""

    def __init__(self, *pids):
        self.started = time.monotonic()
        self.machine = machine_cpu()["busy"]
        self.own = own_cpu()
        self.servers = {pid: process_cpu_seconds(pid) for pid in pids if pid}

    def share(self) -> float:
        elapsed = time.monotonic() - self.started
        ours = own_cpu() - self.own
        for pid, before in self.servers.items():
            try:
                ours += process_cpu_seconds(pid) - before
            except OSError:
                pass  # gone (and waited for, so counted in own_cpu)
        others = max(0.0, machine_cpu()["busy"] - self.machine - ours)
        return round(others / (elapsed * (os.cpu_count() or 1)), 3)


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory now (VmRSS) or at its peak (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


# ---- wrk ----------------------------------------------------------------------------------------


def machine() -> dict:
    import tornado

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = None
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "tornado": tornado.version,
        "wrk": " ".join(wrk_version.split()[:2]),
        "commit": git_head(),
    }


def git_head():
    """The checked-out commit, read from .git (no git command), or None. In a worktree (.git is a file naming
    its git directory) HEAD is there and the branches are in the common directory it names."""
    try:
        git = os.path.join(ROOT, ".git")
        common = git
        if os.path.isfile(git):
            with open(git) as pointer:
                git = pointer.read().strip().partition("gitdir: ")[2]
            common = git
            if os.path.exists(os.path.join(git, "commondir")):
                with open(os.path.join(git, "commondir")) as named:
                    common = os.path.normpath(os.path.join(git, named.read().strip()))
        with open(os.path.join(git, "HEAD")) as head:
            ref = head.read().strip()
        if not ref.startswith("ref: "):
            return ref[:12]
        ref = ref[5:]
        path = os.path.join(common, ref)
        if os.path.exists(path):
            with open(path) as f:
                return f.read().strip()[:12]
        with open(os.path.join(common, "packed-refs")) as packed:
            for line in packed:
                if line.strip().endswith(" " + ref):
                    return line.split()[0][:12]
    except OSError:
        pass
    return None


def bcrypt_seconds(rounds: int = 12, samples: int = 5) -> dict:
    """Median time of one bcrypt check at this cost, in this process, with nothing else running; the
    ceiling is cores / that. Also what one thread per core really delivers here together (SMT siblings,
    a shared host or turbo limits make that less than the ceiling), reported beside it."""
    from concurrent.futures import ThreadPoolExecutor

    import bcrypt

    password = seed.PASSWORD.encode()
    hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds))
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        bcrypt.checkpw(password, hashed)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    cores = os.cpu_count() or 1
    checks = cores * 3
    with ThreadPoolExecutor(cores) as pool:
        start = time.perf_counter()
        list(pool.map(lambda _: bcrypt.checkpw(password, hashed), range(checks)))
        parallel = checks / (time.perf_counter() - start)
    return {
        "rounds": rounds,
        "samples": [round(t, 4) for t in times],
        "seconds": round(median, 4),
        "cores": cores,
        "ceiling_per_s": round(cores / median, 2),
        "parallel_per_s": round(parallel, 2),
    }


def busy_fraction(seconds: float = 1.0) -> float:
    """How busy the whole machine is right now (0..1 of all cores), over a short sample."""
    before = machine_cpu()["busy"]
    time.sleep(seconds)
    return (machine_cpu()["busy"] - before) / (seconds * (os.cpu_count() or 1))


# ---- the run ------------------------------------------------------------------------------------
