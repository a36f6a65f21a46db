"""The first run (`make run`): SQLite, no services, demo data, twice in a row."""

import re

import pytest

from tests.subprocess_env import PRODUCTION_ENV, child_env, run_manage

ROLES = ["Cashier", "Store Manager", "Program Administrator", "System Administrator", "Fraud Analyst"]


@pytest.mark.slow
def test_migrate_and_seed_on_sqlite_twice_print_the_same_logins(tmp_path):
    env = child_env(DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'first.sqlite3'}")
    outputs = []
    for _ in range(2):
        migrate = run_manage("migrate", "--no-input", env=env, timeout=300)
        assert migrate.returncode == 0, migrate.stderr
        seed = run_manage("seed_demo", env=env)
        assert seed.returncode == 0, seed.stderr
        outputs.append(seed.stdout)
    for role in ROLES:
        assert f"{role}: username" in outputs[0], role
    assert "Demo data: 3 stores, 12 members." in outputs[0] and "Demo data: 3 stores, 12 members." in outputs[1]
    uris = [re.findall(r"otpauth://totp/\S+", out) for out in outputs]
    assert len(uris[0]) == 6 and uris[0] == uris[1]  # same devices the second time
    codes = re.findall(r"backup codes: ((?:\w{8} ?){5})", outputs[0])
    assert len(codes) == 6

    otp = run_manage("demo_otp", "cashier", env=env)
    assert otp.returncode == 0 and re.fullmatch(r"\d{6}\n", otp.stdout)


@pytest.mark.parametrize("command", [["seed_demo"], ["demo_otp", "cashier"]])
def test_demo_commands_refuse_to_run_without_debug(command):
    result = run_manage(*command, env=child_env(**PRODUCTION_ENV))
    assert result.returncode != 0
    assert "only with DEBUG=1" in result.stderr
