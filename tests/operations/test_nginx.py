"""deploy/nginx.conf in front of run.py: a real nginx, only its ports changed."""

import grp
import os
import pwd
import re
import shutil
import subprocess
from http.client import HTTPConnection

import pytest

from tests.helpers import PASSWORD, assert_error, free_port
from tests.service_process import ROOT, http, running, wait_until_answering

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
)
pytestmark = [
    pytest.mark.slow,  # every test starts nginx and run.py
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx; .ci/run does)"),
]

METRICS_TOKEN = "metrics-token-0123456789abcdef"

# The smallest complete nginx.conf around the site file: everything it writes stays in the temp dir.
MAIN_CONF = """\
daemon off;
worker_processes 1;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/accounts.conf;
}}
"""


def current_user() -> str:
    """As root, nginx would run its workers as nobody; keep them as the current user. Otherwise nothing to say."""
    if os.geteuid() != 0:
        return ""
    return f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};"


def site_conf(nginx_port: int, service_port: int) -> str:
    site = open(os.path.join(ROOT, "deploy", "nginx.conf")).read()
    for old, new in (
        ("listen 80;", f"listen 127.0.0.1:{nginx_port};"),
        ("listen [::]:80;", ""),
        ("server 127.0.0.1:8000 ", f"server 127.0.0.1:{service_port} "),
    ):
        assert site.count(old) == 1, old
        site = site.replace(old, new)
    return site


@pytest.fixture
def service():
    with running(TRUST_PROXY="true", LOGIN_ATTEMPTS_LIMIT="2", METRICS_TOKEN=METRICS_TOKEN) as process:
        yield process


@pytest.fixture
def nginx(service, tmp_path):
    """A real nginx on a free port proxying to the service; returns its base URL."""
    port = free_port()
    (tmp_path / "accounts.conf").write_text(site_conf(port, service.port))
    (tmp_path / "nginx.conf").write_text(MAIN_CONF.format(tmp=tmp_path, user=current_user()))
    process = subprocess.Popen(
        [NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # errors go to error.log
    url = f"http://127.0.0.1:{port}"
    try:
        error_log = tmp_path / "error.log"
        wait_until_answering(url, process, lambda: error_log.read_text() if error_log.exists() else "")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def login(url, password, headers):
    return http("POST", url + "/auth/login", json={"email": "mark@example.com", "password": password}, headers=headers)


def test_requests_pass_through_and_the_limit_counts_nginx_s_address(service, nginx):
    health = http("GET", nginx + "/health")
    assert health.code == 200 and health.json == {"status": "ok"}
    assert health.headers["X-Request-ID"] and "nginx/" not in health.headers.get("Server", "")
    assert (
        http(
            "POST",
            nginx + "/auth/register",
            json={"name": "Mark Essien", "email": "mark@example.com", "password": PASSWORD},
        ).code
        == 201
    )
    # Each attempt spoofs other addresses; the service must count nginx's peer address, not these.
    for spoofed in ("1.2.3.4", "5.6.7.8"):
        assert_error(login(nginx, "wrong password", {"X-Forwarded-For": spoofed, "X-Real-IP": spoofed}), 401)
    limited = login(nginx, PASSWORD, {"X-Forwarded-For": "9.9.9.9", "X-Real-IP": "9.9.9.9"})
    assert_error(limited, 429)
    assert int(limited.headers["Retry-After"]) > 0
    # Straight to run.py, X-Real-IP is believed (TRUST_PROXY): another address, counted on its own.
    direct = {"X-Real-IP": "203.0.113.7"}
    assert_error(login(service.url, "wrong password", direct), 401)
    assert login(service.url, PASSWORD, direct).code == 200
    assert_error(login(nginx, PASSWORD, {}), 429)  # the count through nginx is untouched


def test_bodies_over_nginx_s_limit_stop_there_in_the_envelope(service, nginx):
    response = http(
        "POST", nginx + "/auth/register", body=b"x" * (7 * 1024 * 1024), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "Request body too large")
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    # Between the service's 1 MiB and nginx's 6 MiB: the service's own 413 passes through.
    response = http(
        "POST", nginx + "/auth/register", body=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "Request body too large")
    assert response.headers["X-Request-ID"]  # answered by the service, not nginx
    assert service.request("GET", "/health").code == 200


def upstream_keepalive(site: str) -> int:
    """The `keepalive N` of the upstream block: nginx reuses connections to the service, as in production."""
    upstream = re.search(r"upstream accounts_backend \{(.*?)\}", site, re.S).group(1)
    return int(re.search(r"^\s*keepalive (\d+);", upstream, re.M).group(1))


def test_errors_do_not_cost_later_requests_on_reused_upstream_connections(service, nginx):
    """200 rounds of a 401 then a POST: with the upstream connection dropped after the 401 unannounced,
    nginx sent some POSTs on dead connections and answered them 502."""
    assert upstream_keepalive(site_conf(80, 8000)) >= 1
    connection = HTTPConnection("127.0.0.1", int(nginx.rsplit(":", 1)[1]), timeout=30)
    statuses = []
    try:
        for _ in range(200):
            for method, path, body in (
                ("GET", "/users/getFav", None),
                ("POST", "/auth/forgot-password", b'{"email": "nobody@example.com"}'),
            ):
                connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                statuses.append(response.status)
    finally:
        connection.close()
    assert statuses == [401, 204] * 200, [s for s in statuses if s not in (401, 204)]


def test_twenty_alternating_errors_and_successes_through_nginx(service, nginx, tmp_path):
    token = http(
        "POST",
        nginx + "/auth/register",
        json={"name": "Mark Essien", "email": "mark@example.com", "password": PASSWORD},
    ).json["tokens"]["access"]["token"]
    connection = HTTPConnection("127.0.0.1", int(nginx.rsplit(":", 1)[1]), timeout=30)
    as_json = {"Content-Type": "application/json"}
    rounds = [
        ("GET", "/users/getFav", None, {}, 401),
        ("GET", "/nowhere", None, {}, 404),
        ("POST", "/auth/login", b"x", {"Content-Type": "text/plain"}, 415),
        ("POST", "/auth/register", b"{}", as_json, 422),
        ("POST", "/auth/register", b"x" * (1024 * 1024 + 10), as_json, 413),
        ("PUT", "/users/addToFav", b'{"boardId": "b"}', as_json, 401),
        ("POST", "/nowhere", b"{}", as_json, 404),
        ("DELETE", "/health", None, {}, 405),
        ("POST", "/auth/login", b"{", as_json, 400),
        ("GET", "/users/user", None, {"Authorization": "x"}, 401),
    ]
    success = ("PUT", "/users/addToFav/", b'{"boardId": "b"}', {**as_json, "Authorization": f"Bearer {token}"}, 200)
    try:
        for request in [step for error in rounds for step in (error, success)]:
            connection.request(*request[:2], body=request[2], headers=request[3])
            response = connection.getresponse()
            response.read()
            assert response.status == request[4], request[:2]
    finally:
        connection.close()
    log = (tmp_path / "error.log").read_text()
    assert "upstream prematurely closed" not in log and "reset by peer" not in log, log


def test_service_down_is_502_in_the_envelope(service, nginx):
    assert service.stop() == 0
    response = http("GET", nginx + "/health")
    assert_error(response, 502, "Service unavailable")


def test_metrics_are_not_served_from_outside_even_with_the_token(service, nginx):
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert service.request("GET", "/metrics", headers=bearer).code == 200  # Prometheus scrapes run.py directly
    for path in ("/metrics", "/metrics/", "/metrics?format=text", "/%6Detrics", "//metrics", "/metrics/x/.."):
        response = http("GET", nginx + path, headers=bearer)
        assert_error(response, 404, "Not found")
        assert response.headers["Content-Type"] == "application/json; charset=UTF-8", path
        assert "X-Request-ID" not in response.headers, path  # nginx answered: the service never saw it
    assert http("GET", nginx + "/health").code == 200  # everything else still passes through
