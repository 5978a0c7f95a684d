"""wrk, the load generator: installed when missing, run with a Lua script, its summary parsed."""

import json
import shutil
import subprocess

from system import WRK_DIR


def ensure_wrk() -> str:
    """wrk from Debian's packages, installed when missing (the bench runs as root)."""
    path = shutil.which("wrk")
    if path:
        return path
    print("wrk not found: apt-get install -y wrk", flush=True)
    if subprocess.run(["apt-get", "install", "-y", "wrk"], stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update"], stdout=subprocess.DEVNULL, check=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], stdout=subprocess.DEVNULL, check=True)
    path = shutil.which("wrk")
    if not path:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return path


def wrk_command(url, script, args=(), connections=32, duration=10.0, timeout=10.0):
    # One wrk thread: on a small machine wrk's own CPU is taken from the server under test, and a
    # single-threaded Python server is nowhere near what one wrk thread can send.
    # wrk takes whole seconds.
    duration, timeout = max(1, round(duration)), max(1, round(timeout))
    return [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        f"--timeout={timeout}s",
        "-s",
        script,
        url,
        "--",
        *[str(a) for a in args],
    ]


class ErrorAnswers(RuntimeError):
    """A measure was answered with errors: the bench stops, since a refused request is no work done."""


def parse_wrk(output: str, connections: int, url: str = "") -> dict:
    """wrk's WRK_JSON line as a result whose requests and rps count only the successful answers. wrk counts an
    answer with a status of 400 or more as a status error (and none of the measured routes answers 1xx or
    3xx), so requests less those are the 2xx ones. Any error answer raises ErrorAnswers: a limit refusing
    the bench's own traffic once made the login measure report thousands of 429s a second as logins."""
    for line in output.splitlines():
        if line.startswith("WRK_JSON "):
            raw = json.loads(line[len("WRK_JSON ") :])
            seconds = raw["duration_us"] / 1e6
            lat = raw["latency_us"]
            errors = raw["errors"]
            if errors["status"]:
                raise ErrorAnswers(
                    f"{url or 'a measure'}: {errors['status']} of {raw['requests']} answers were "
                    "errors (status 400 or more): a limit or a bug refused the bench's traffic; the "
                    "service's access log (bench/results/service-*.log) says which status"
                )
            ok = raw["requests"] - errors["status"]
            return {
                "requests": ok,
                "answers": raw["requests"],
                "seconds": round(seconds, 3),
                "rps": round(ok / seconds, 1),
                "connections": connections,
                "p50_ms": round(lat["p50"] / 1000, 2),
                "p90_ms": round(lat["p90"] / 1000, 2),
                "p99_ms": round(lat["p99"] / 1000, 2),
                "max_ms": round(lat["max"] / 1000, 2),
                "mean_ms": round(lat["mean"] / 1000, 2),
                "errors": errors,
                "failed": errors["status"] + errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
            }
    raise RuntimeError(f"wrk printed no WRK_JSON line:\n{output}")


def run_wrk(url, script, args=(), connections=32, duration=10.0, timeout=10.0) -> dict:
    result = subprocess.run(
        wrk_command(url, script, args, connections, duration, timeout),
        cwd=WRK_DIR,
        capture_output=True,
        text=True,
        timeout=duration + timeout + 60,
    )
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr or result.stdout}")
    return parse_wrk(result.stdout, connections, url)


# ---- the machine and bcrypt ---------------------------------------------------------------------
