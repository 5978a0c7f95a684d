"""bench/run.py --tiny as a process: every measure runs, and any error answer stops the bench.

A limit that refused the bench's own traffic once went unnoticed: the login measure counted thousands of
429s a second as logins. These run the whole bench, for a second per measure, so a new limit (or a route
answering errors) fails the suite instead."""

import json
import os
import subprocess
import sys

import pytest

from tests.service_process import ROOT

# The measures a tiny run must report, each with a successful answer or more (wrk's, and bench/photos.py's).
WRK_MEASURES = (
    "bare",
    "health",
    "minimal",
    "users_user",
    "organisations",
    "users_list",
    "login",
    "health_under_logins",
    "logins_during_probe",
    "refresh",
    "users_user_large",
    "scale_users_user_1",
    "scale_users_user_20",
    "scale_organisations_1",
    "scale_organisations_20",
    "health_before_uploads",
    "health_under_uploads",
)

pytestmark = pytest.mark.slow  # starts the bench, which starts run.py, baselines and wrk


def bench(tmp_path, *args) -> tuple:
    out = tmp_path / "tiny.json"
    env = {name: value for name, value in os.environ.items() if name != "MONGODB_URI"}
    finished = subprocess.run(
        [sys.executable, "bench/run.py", "--tiny", "--out", str(out), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return finished, (json.loads(out.read_text()) if out.exists() else None)


def test_a_tiny_run_measures_everything_and_every_answer_is_a_success(tmp_path):
    finished, result = bench(tmp_path)

    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    raw = result["raw"]
    for name in WRK_MEASURES:
        assert raw[name]["errors"]["status"] == 0, (name, raw[name])
        assert raw[name]["requests"] > 0, (name, raw[name])
        assert raw[name]["requests"] == raw[name]["answers"], (name, raw[name])
    assert raw["photo_upload"]["count"] == 1
    assert raw["uploads_during_probe"]["failures"] == []
    assert not any(row.get("skipped") for row in result["table"])
    # Every limit on the bench's traffic was off for its services.
    assert result["settings"]["limits_off"]["LOGIN_ATTEMPTS_PER_ADDRESS"] == "0"
    assert "bench failed" not in finished.stderr


def test_a_measure_answered_with_errors_stops_the_bench(tmp_path):
    """The same run with a limit put back: the login measure meets 429s, and the bench says so and exits 1."""
    finished, result = bench(tmp_path, "--service-env", "LOGIN_ATTEMPTS_PER_ADDRESS=3")

    assert finished.returncode == 1, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "bench failed: " in finished.stderr
    assert "/auth/login: " in finished.stderr and "answers were errors" in finished.stderr
    assert result is None  # no table of figures is written for a run that failed
