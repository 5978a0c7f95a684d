"""The MongoDB settings: the connection string checked up front, the operation timeout's bounds."""

import pytest

from settings import Settings, SettingsError
from tests.conftest import TEST_ENV
from tests.service_process import run_py


@pytest.mark.parametrize(
    "uri, message",
    [
        ("http://127.0.0.1:27017/", "MONGODB_URI must start with mongodb:// or mongodb+srv://"),
        ("localhost:27017", "MONGODB_URI must start with mongodb:// or mongodb+srv://"),
        ("mongodb://127.0.0.1:27017/?tls=maybe", "MONGODB_URI is not a valid connection string: The value of tls"),
        (
            "mongodb://accounts:s3cret-pw@127.0.0.1:27017/?authMechanism=BOGUS",
            "MONGODB_URI is not a valid connection string: authmechanism must be in",
        ),
    ],
)
def test_a_bad_connection_string_is_one_line_without_the_password(uri, message):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**TEST_ENV, "MONGODB_URI": uri})
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)


def test_good_connection_strings_pass():
    for uri in (
        "mongodb://localhost:27017",
        "mongodb://a:b@db1:27017,db2:27017/?replicaSet=rs0&authSource=admin",
        "mongodb+srv://cluster0.example.com/",
    ):  # SRV is resolved when the service connects, not here
        assert Settings.from_env({**TEST_ENV, "MONGODB_URI": uri}).mongodb_uri == uri


def test_operation_timeout_setting():
    assert Settings.from_env({}).mongodb_operation_timeout_ms == 5000
    assert Settings.from_env({"MONGODB_OPERATION_TIMEOUT_MS": "750"}).mongodb_operation_timeout_ms == 750
    for bad in ("soon", "99", "600001"):
        with pytest.raises(SettingsError) as caught:
            Settings.from_env({"MONGODB_OPERATION_TIMEOUT_MS": bad})
        assert str(caught.value).startswith("MONGODB_OPERATION_TIMEOUT_MS must be")


@pytest.mark.slow
def test_run_py_stops_on_a_bad_connection_string_with_one_line():
    result = run_py(MONGODB_URI="http://127.0.0.1:27017/")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: MONGODB_URI must start with mongodb:// or mongodb+srv://"
