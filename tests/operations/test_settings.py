"""Settings: defaults, and one clear error naming the variable for each bad value."""

import pytest

from settings import Settings, SettingsError


def test_defaults_follow_the_contract():
    s = Settings.from_env({})
    assert s.embedded and s.jwt_secret_generated and len(s.jwt_secret) >= 32
    assert (s.port, s.bcrypt_rounds, s.access_token_minutes, s.refresh_token_days) == (8000, 12, 30, 30)
    assert (s.reset_token_minutes, s.verify_token_minutes) == (10, 60)
    assert (s.login_attempts_limit, s.login_attempts_window_seconds) == (10, 900)
    assert s.max_body_bytes == 1024 * 1024 and s.max_photo_bytes == 5 * 1024 * 1024
    assert s.app_url == "http://localhost:8000" and s.trust_proxy is False and s.cors_origins == ()
    assert s.smtp_host is None
    assert s.session_cookie is True and s.refresh_reuse_grace_seconds == 10


def test_cookies_off_and_no_refresh_grace():
    s = Settings.from_env({"SESSION_COOKIE": "false", "REFRESH_REUSE_GRACE_SECONDS": "0"})
    assert s.session_cookie is False and s.refresh_reuse_grace_seconds == 0


def test_app_url_follows_port():
    assert Settings.from_env({"PORT": "9001"}).app_url == "http://localhost:9001"


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"BCRYPT_ROUNDS": "3"}, "BCRYPT_ROUNDS"),
        ({"ACCESS_TOKEN_MINUTES": "0"}, "ACCESS_TOKEN_MINUTES"),
        ({"MONGODB_URI": "mongodb://db:27017"}, "JWT_SECRET"),
        ({"JWT_SECRET": "short"}, "JWT_SECRET"),
        ({"TRUST_PROXY": "maybe"}, "TRUST_PROXY"),
        ({"APP_URL": "ftp://x"}, "APP_URL"),
        ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS"),
        ({"ADMIN_EMAIL": "admin@example.com"}, "ADMIN_EMAIL"),
        ({"ADMIN_EMAIL": "admin@example.com", "ADMIN_PASSWORD": "short"}, "ADMIN_PASSWORD"),
        ({"LOGIN_ATTEMPTS_LIMIT": "-1"}, "LOGIN_ATTEMPTS_LIMIT"),
        ({"MAX_PHOTO_BYTES": "lots"}, "MAX_PHOTO_BYTES"),
        ({"SMTP_STARTTLS": "sometimes"}, "SMTP_STARTTLS"),
        ({"SESSION_COOKIE": "perhaps"}, "SESSION_COOKIE"),
        ({"REFRESH_REUSE_GRACE_SECONDS": "-1"}, "REFRESH_REUSE_GRACE_SECONDS"),
        ({"REFRESH_REUSE_GRACE_SECONDS": "301"}, "REFRESH_REUSE_GRACE_SECONDS"),
    ],
)
def test_bad_values_name_their_variable(env, variable):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert str(caught.value).startswith(variable) and "\n" not in str(caught.value)


def test_real_server_settings():
    s = Settings.from_env(
        {
            "MONGODB_URI": "mongodb://db:27017",
            "MONGODB_DB": "prod",
            "JWT_SECRET": "s" * 40,
            "CORS_ORIGINS": "https://a.example.com/, https://b.example.com",
            "TRUST_PROXY": "on",
        }
    )
    assert not s.embedded and s.mongodb_db == "prod" and not s.jwt_secret_generated
    assert s.cors_origins == ("https://a.example.com", "https://b.example.com") and s.trust_proxy


def test_port_override_moves_the_default_app_url_but_not_an_explicit_one():
    assert Settings.from_env({}, port=18900).app_url == "http://localhost:18900"
    assert Settings.from_env({"PORT": "9001"}, port=18900).port == 18900
    assert Settings.from_env({"APP_URL": "https://a.example.com"}, port=18900).app_url == "https://a.example.com"


def test_product_name_and_client_url():
    assert (Settings.from_env({}).app_name, Settings.from_env({}).client_url) == ("Accounts", None)
    s = Settings.from_env({"APP_NAME": " Task Board ", "CLIENT_URL": "https://board.example.com/"})
    assert (s.app_name, s.client_url) == ("Task Board", "https://board.example.com")
    for env in ({"APP_NAME": "Evil\r\nBcc: x@example.com"}, {"APP_NAME": "x" * 61}, {"CLIENT_URL": "javascript:x"}):
        with pytest.raises(SettingsError) as caught:
            Settings.from_env(env)
        assert str(caught.value).startswith(next(iter(env)))
