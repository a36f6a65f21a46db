"""Production settings: the deploy checks pass, and missing secrets stop the start-up."""

import pytest

from tests.subprocess_env import PRODUCTION_ENV, child_env, run_manage, run_python


def test_check_deploy_is_clean_with_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=child_env(**PRODUCTION_ENV))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    "missing",
    [
        "SECRET_KEY",
        "FIELD_ENCRYPTION_KEYS",
        "BLIND_INDEX_KEY",
        "OTP_HMAC_KEY",
        "AUDIT_CHAIN_KEY",
        "VOUCHER_SIGNING_KEY",
        "TILL_DATA_HMAC_KEY",
        "SMS_BACKEND",  # the console default would print sign-in codes to the log
    ],
)
def test_debug_off_without_a_secret_refuses_to_start_and_names_it(missing):
    result = run_manage("check", env=child_env(**{**PRODUCTION_ENV, missing: None}))
    assert result.returncode == 2
    assert f"Configuration error: {missing} is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_keys_must_all_differ():
    env = child_env(**{**PRODUCTION_ENV, "OTP_HMAC_KEY": PRODUCTION_ENV["BLIND_INDEX_KEY"]})
    result = run_manage("check", env=env)
    assert result.returncode == 2 and "must all be different" in result.stderr


def test_debug_on_starts_without_any_secret(tmp_path):
    env = child_env(DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    result = run_manage("check", env=env)
    assert result.returncode == 0, result.stderr


def test_debug_on_without_an_sms_backend_uses_the_console(tmp_path):
    env = child_env(
        DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", DJANGO_SETTINGS_MODULE="loyalty.settings"
    )
    result = run_python("from django.conf import settings; print(settings.SMS_BACKEND)", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "loyalty.notifications.ConsoleSmsBackend"


def test_debug_off_takes_the_sms_backend_it_is_given():
    env = child_env(**PRODUCTION_ENV, DJANGO_SETTINGS_MODULE="loyalty.settings")
    result = run_python("from django.conf import settings; print(settings.SMS_BACKEND)", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == PRODUCTION_ENV["SMS_BACKEND"]
