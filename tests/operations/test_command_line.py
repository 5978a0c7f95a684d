"""python run.py at a terminal: flags checked as settings are, one line and exit code 2 for a bad one."""

import socket

import pytest

import run
from tests.helpers import free_port
from tests.service_process import run_py, running
from version import __version__

pytestmark = pytest.mark.slow  # every test starts run.py


@pytest.mark.parametrize(
    "value, said",
    [
        ("99999", "error: --port must be between 0 and 65535, got 99999"),  # once wrapped to another port
        ("65536", "error: --port must be between 0 and 65535, got 65536"),
        ("-5", "error: --port must be between 0 and 65535, got -5"),  # once a traceback
        ("eighty", "error: --port must be a whole number, got 'eighty'"),
        ("80.5", "error: --port must be a whole number, got '80.5'"),
    ],
)
def test_a_bad_port_flag_is_one_line_and_exit_code_2(value, said):
    result = run_py(f"--port={value}")

    assert result.returncode == 2
    assert result.stderr == said + "\n" and result.stdout == ""


def test_a_bad_or_unknown_flag_is_one_line_too():
    for args, said in (
        (["--processes", "many"], "argument --processes: invalid int value: 'many'"),
        (["--portt", "80"], "unrecognized arguments: --portt 80"),
    ):
        result = run_py(*args)
        assert result.returncode == 2
        assert result.stderr == f"error: {said} (python run.py --help lists the flags)\n"


def test_a_port_in_use_is_one_line_naming_it_and_exit_code_2():
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_py("--port", str(port))

    assert result.returncode == 2
    assert result.stderr == (
        f"error: port {port} is already in use by another process; stop it, or choose another with --port or PORT\n"
    )
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_the_port_flag_overrides_port_and_is_used():
    port = free_port()
    with running(port=port, PORT="99999") as service:  # --port wins, so the bad PORT is never read
        assert service.request("GET", "/health").code == 200
        assert f"listening on http://localhost:{port} " in service.stderr()


def test_version_prints_the_version_and_exits_0():
    result = run_py("--version")

    assert result.returncode == 0
    assert result.stdout == f"accounts service {__version__}\n"
    assert __version__.count(".") == 2 and all(part.isdigit() for part in __version__.split("."))


def test_help_lists_every_flag_and_points_to_the_settings_table():
    result = run_py("--help")

    assert result.returncode == 0
    flags = {flag for action in run.parser()._actions for flag in action.option_strings}
    assert {"--help", "--port", "--processes", "--sync-indexes", "--version"} <= flags
    for flag in flags:
        assert flag in result.stdout, flag
    text = " ".join(result.stdout.split())
    assert "README.md (Configuration)" in text and "`python settings.py` prints it" in text
    assert "LOG_FORMAT" in text and "LOG_LEVEL" in text
