"""Settings from TOML and TIDINGS_* variables, and the errors a wrong setting gives."""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tidings.channels.apns import ApnsSettings
from tidings.channels.fcm import FcmSettings
from tidings.config import ConfigError, load, unknown_variables
from tidings.testing.fcm import make_service_account


def test_defaults_match_the_contract():
    settings = load(None, environ={})
    assert (settings.host, settings.port, settings.database) == ("127.0.0.1", 8000, "sqlite:///./tidings.db")
    verify = settings.verify
    assert (verify.code_length, verify.ttl, verify.max_checks, verify.max_sends, verify.resend_cooldown) == (
        6,
        600,
        5,
        5,
        30,
    )
    assert verify.sms_providers == ["console"]
    assert settings.webhooks.allow_private_networks is False


def test_toml_then_environment(tmp_path):
    path = tmp_path / "tidings.toml"
    path.write_text(
        """
host = "0.0.0.0"
port = 9000
api_key = "tk_from-file-0Hc3zWq8Lr5Ty1Ux7Vb2"

[verify]
code_length = 8
allowed_countries = ["cn"]
test_numbers = { "+15005550006" = { code = "123456", until = "2027-12-31" } }
sms_providers = ["twilio", "yunpian"]

[providers.twilio]
base_url = "http://127.0.0.1:1"
account_sid = "AC123"
auth_token = "secret"
from = "+15005550006"

[providers.yunpian]
apikey = "k"

[webhooks]
allow_private_networks = true
"""
    )
    environ = {
        "TIDINGS_PORT": "9100",
        "TIDINGS_API_KEY": "tk_from-env-9Jd4Kp6Ns2Qa8Zm3Xe5",
        "TIDINGS_VERIFY_TTL": "120",
        "TIDINGS_VERIFY_ALLOWED_COUNTRIES": '["US", "GB"]',
        "TIDINGS_PROVIDERS_TWILIO_AUTH_TOKEN": "env-secret",
        "TIDINGS_PROVIDERS_YUNPIAN_BASE_URL": "http://127.0.0.1:2",
        "TIDINGS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "false",
    }
    settings = load(path, environ=environ)
    assert (settings.host, settings.port, settings.api_key) == ("0.0.0.0", 9100, "tk_from-env-9Jd4Kp6Ns2Qa8Zm3Xe5")
    assert settings.verify.code_length == 8 and settings.verify.ttl == 120
    assert settings.verify.allowed_countries == ["US", "GB"]
    assert settings.verify.test_numbers["+15005550006"].code == "123456"
    assert settings.providers["twilio"]["auth_token"] == "env-secret"
    assert settings.providers["twilio"]["from"] == "+15005550006"
    assert settings.providers["yunpian"]["base_url"] == "http://127.0.0.1:2"
    assert settings.webhooks.allow_private_networks is False


def test_environment_texts_stay_as_written_and_lists_may_be_comma_separated():
    environ = {
        "TIDINGS_API_KEY": "1234567890123456789012345678901234567890",
        "TIDINGS_VERIFY_SMS_PROVIDERS": "twilio, yunpian",
        "TIDINGS_VERIFY_ALLOWED_COUNTRIES": "US",
        "TIDINGS_VERIFY_DEFAULT_REGION": "CN",
        "TIDINGS_TRUSTED_PROXIES": "",
        "TIDINGS_PROVIDERS_YUNPIAN_APIKEY": "12345678901234567890",
        "TIDINGS_PROVIDERS_TWILIO_ACCOUNT_SID": "AC1",
        "TIDINGS_PROVIDERS_TWILIO_AUTH_TOKEN": "1234567890",
        "TIDINGS_PROVIDERS_TWILIO_FROM": "15550001111",
    }
    settings = load(None, environ=environ)
    assert settings.api_key == "1234567890123456789012345678901234567890"
    assert settings.verify.sms_providers == ["twilio", "yunpian"]
    assert settings.verify.allowed_countries == ["US"]
    assert settings.verify.default_region == "CN"
    assert settings.trusted_proxies == []
    assert settings.providers["yunpian"]["apikey"] == "12345678901234567890"
    assert settings.providers["twilio"]["auth_token"] == "1234567890"
    assert settings.providers["twilio"]["from"] == "15550001111"


@pytest.mark.parametrize(
    ("text", "environ", "says"),
    [
        ("[verify]\ncode_length = 3\n", {}, "verify.code_length"),
        ("[verify]\ncolor = 'blue'\n", {}, "verify.color"),
        ("port = 'eighty'\n", {}, "port"),
        ("", {"TIDINGS_VERIFY_MAX_CHECKS": "zero"}, "verify.max_checks"),
        ("[verify]\nsms_providers = ['carrier-pigeon']\n", {}, "carrier-pigeon"),
        ("[providers.twilio]\ncolour = 1\n", {}, "providers.twilio.colour"),
        ("[dispatch]\nlease = 5\nrequest_timeout = 10\n", {}, "lease"),
        ("[dispatch]\nlease = 8\nrequest_timeout = 2\n[webhooks]\ntimeout = 10\n", {}, "webhooks.timeout"),
        ("role = 'worker'\n", {}, "redis://"),
        ("", {"TIDINGS_ROLE": "cook"}, "role"),
        ("[verify]\ntemplates = { login = { en = 'no code here' } }\n", {}, "{code}"),
        ("not toml at all [", {}, "not valid TOML"),
        ("", {"TIDINGS_VERIFY_RESEND_COOLDOWN": "Infinity"}, "verify.resend_cooldown"),
        ("[dispatch]\nrate = inf\n", {}, "dispatch.rate"),
        ("[providers.yunpian]\napikey = 'k'\nrate = nan\n", {}, "providers.yunpian.rate"),
        ("", {"TIDINGS_LOG_LEVEL": "verbose"}, "log_level"),
        ("", {"TIDINGS_TRUSTED_PROXIES": "10.0.0.0/8,notanip"}, "trusted_proxies"),
        ("[verify.test_numbers]\n'+123' = { code = '1234' }\n", {}, "verify.test_numbers"),
        ("", {"TIDINGS_VERIFY_ALLOWED_COUNTRIES": "CN,XYZ"}, "verify.allowed_countries"),
        ("default_region = 'China'\n", {}, "default_region"),
        ("[limits.country_daily_budget]\nChina = 100\n", {}, "limits.country_daily_budget"),
        ("[providers.smtp]\ntimeout = 120\n", {}, "providers.smtp.timeout"),
        ("verify = 5\n", {}, "verify"),
        ("providers = 5\n", {}, "providers"),
        ("[providers]\ntwilio = 'x'\n", {}, "providers.twilio"),
        ("", {"TIDINGS_VERIFY_TTL": "true"}, "verify.ttl"),
        ("", {"TIDINGS_LIMITS_PER_COUNTRY_HOUR": '{"GB": -1}'}, "limits.per_country_hour.GB"),
        ("", {"TIDINGS_DEFAULT_REGION": "ZZ"}, "default_region"),
        ("[dispatch]\nretry_base_delay = 10\nretry_max_delay = 1\n", {}, "retry_base_delay"),
        ("", {"TIDINGS_VERIFY_SMS_PROVIDERS": "smtp"}, "verify.sms_providers"),
        ("[verify]\nemail_providers = ['twilio']\n", {}, "verify.email_providers"),
        ("[verify.test_numbers]\n'15005550006' = { code = '123456' }\n", {}, "E.164"),
        ("[providers.yunpian]\napikey = 'k'\nbase_url = 'sms.yunpian.com'\n", {}, "providers.yunpian.base_url"),
        ("[providers.http]\nurl = 'example.com/send'\n", {}, "providers.http.url"),
        ("", {"TIDINGS_PROVIDERS_ALIYUN_TEMPLATE_PARAMS": "code,bogus"}, "providers.aliyun.template_params"),
        ("", {"TIDINGS_DATABASE": "redis://127.0.0.1:6379/abc"}, "database"),
        ("[providers.twilio]\nconcurrency = true\n", {}, "providers.twilio.concurrency"),
        ("", {"TIDINGS_LIMITS_PER_COUNTRY_HOUR": '{"GB": true}'}, "limits.per_country_hour"),
        ("", {"TIDINGS_DATABASE": "redis://127.0.0.1:notaport/9"}, "database"),
        ("", {"TIDINGS_DATABASE": "redis://127.0.0.1:6379/9?socket_timeout=abc"}, "database"),
        ("[providers.apns]\nteam_id = 'T'\nkey_id = 'K'\ntopic = 'com.x'\n", {}, "providers.apns: give private_key"),
        ("", {"TIDINGS_PROVIDERS_APNS_PRIVATE_KEY": "x"}, "providers.apns.team_id"),
        ("", {"TIDINGS_PROVIDERS_FCM_SERVICE_ACCOUNT_FILE": "/nonexistent.json"}, "providers.fcm: cannot read"),
        ("", {"TIDINGS_PUSH_FEEDBACK_URL": "example.com/hook"}, "push.feedback_url"),
        ("", {"TIDINGS_PUSH_FEEDBACK_SECRET": "hunter2"}, "push.feedback_secret"),
    ],
)
def test_bad_settings_are_named(tmp_path, text, environ, says):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load(path, environ=environ)
    assert says in str(raised.value)


def test_a_file_must_be_utf8_and_may_begin_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "tidings.toml"
    path.write_bytes(b'[verify]\napp_name = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(path, environ={})
    path.write_bytes("\ufeff[verify]\napp_name = 'Acme'\n".encode())
    assert load(path, environ={}).verify.app_name == "Acme"


def test_misspelt_variables_are_found():
    environ = {
        "TIDINGS_VERIFY_TTLL": "5",
        "TIDINGS_VERIFY_TTL": "5",
        "TIDINGS_PROVIDERS_TWILIO_FROM": "+1",
        "PATH": "/",
    }
    assert unknown_variables(environ) == ["TIDINGS_VERIFY_TTLL"]


@pytest.mark.parametrize(
    "url", ["redis://:hunter2@127.0.0.1:6379/nine", "redis://:hunter2/x@127.0.0.1:6379/0", "REDIS://:hunter2@h/0"]
)
def test_a_redis_password_stays_out_of_messages(url):
    with pytest.raises(ConfigError) as raised:
        load(None, environ={"TIDINGS_DATABASE": url})
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    "environ",
    [
        {"TIDINGS_VERIFY_EMAIL_PROVIDERS": "console"},
        {"TIDINGS_VERIFY_EMAIL_PROVIDERS": "http", "TIDINGS_PROVIDERS_HTTP_URL": "HTTPS://mail.example/send"},
        {"TIDINGS_DATABASE": "redis://127.0.0.1:6379/0/"},
        {"TIDINGS_DATABASE": "redis://127.0.0.1/x?db=3"},
        {"TIDINGS_DATABASE": "unix:///run/redis.sock?db=2"},
        {"TIDINGS_LIMITS_PER_COUNTRY_HOUR": '{"GB": 5}'},
    ],
)
def test_settings_that_are_right_are_taken(environ):
    load(None, environ=environ)


def test_missing_file():
    with pytest.raises(ConfigError, match="cannot read"):
        load("/nonexistent/tidings.toml", environ={})


def test_serve_refuses_a_bad_config_with_a_message(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[verify]\ncode_length = 99\n")
    done = subprocess.run(
        [sys.executable, "-m", "tidings", "serve", "--config", str(path)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert "verify.code_length" in done.stderr and "Traceback" not in done.stderr


def test_serve_refuses_a_role_on_sqlite_with_a_message_that_shows_no_secret(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tidings", "serve", "--role", "api", "--port", "0"],
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
        env={**os.environ, "TIDINGS_PROVIDERS_YUNPIAN_APIKEY": "very-secret-apikey"},
    )  # fmt: skip
    assert done.returncode == 2
    assert "redis://" in done.stderr and "Traceback" not in done.stderr
    assert "secret-apikey" not in done.stderr and "input_value" not in done.stderr


def test_serve_says_when_its_port_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "tidings", "serve", "--port", str(port)],
            capture_output=True, text=True, timeout=30, cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 1
    assert "cannot start" in done.stderr and str(port) in done.stderr and "Traceback" not in done.stderr


ROOT = secrets.token_hex(16)


def test_serve_stops_at_once_when_redis_refuses_the_database(tmp_path, redis_url):
    refused = redis_url.rpartition("/")[0] + "/9999"
    done = subprocess.run(
        [sys.executable, "-m", "tidings", "serve", "--port", "0"],
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
        env={**os.environ, "TIDINGS_DATABASE": refused, "TIDINGS_API_KEY": ROOT, "TIDINGS_SECRET_KEY": "s"},
    )  # fmt: skip
    assert done.returncode == 1
    assert "refuses" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("weak", ["short", "password1234", "a" * 64, "tk_" + "ab" * 30, "0123456789abcdef"])
def test_a_root_key_easy_to_guess_is_refused_saying_how_to_make_one(weak):
    with pytest.raises(ConfigError) as refused:
        load(None, environ={"TIDINGS_API_KEY": weak})
    message = str(refused.value)
    assert message.startswith("invalid configuration: api_key: the root key is too easy to guess")
    assert "secrets.token_urlsafe(32)" in message
    assert weak not in message


@pytest.mark.parametrize(
    "strong",
    [
        "tk_" + secrets.token_urlsafe(32),
        secrets.token_hex(16),  # 128 bits exactly
        secrets.token_urlsafe(16),
        base64.b64encode(os.urandom(24)).decode(),
    ],
)
def test_a_random_root_key_of_128_bits_or_more_is_taken(strong):
    assert load(None, environ={"TIDINGS_API_KEY": strong}).api_key == strong


def test_apns_and_fcm_are_configured_from_the_environment(tmp_path):
    """As a container is: the key's text with its newlines escaped, the service account's JSON whole."""
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    account = make_service_account("https://oauth2.googleapis.com/token")
    environ = {
        "TIDINGS_PROVIDERS_APNS_TEAM_ID": "0123456789",
        "TIDINGS_PROVIDERS_APNS_KEY_ID": "ABC123DEFG",
        "TIDINGS_PROVIDERS_APNS_PRIVATE_KEY": pem.decode().replace("\n", "\\n"),
        "TIDINGS_PROVIDERS_APNS_TOPIC": "com.example.app",
        "TIDINGS_PROVIDERS_FCM_SERVICE_ACCOUNT": json.dumps(account),
        "TIDINGS_PUSH_FEEDBACK_URL": "https://app.example.com/hooks/tidings",
    }
    settings = load(None, environ=environ)
    apns = ApnsSettings.model_validate(settings.providers["apns"])
    assert (apns.team_id, apns.key_id, apns.base_url) == ("0123456789", "ABC123DEFG", "https://api.push.apple.com")
    assert FcmSettings.model_validate(settings.providers["fcm"]).base_url == "https://fcm.googleapis.com"
    assert settings.push.feedback_url == "https://app.example.com/hooks/tidings"
    assert unknown_variables(environ) == []
