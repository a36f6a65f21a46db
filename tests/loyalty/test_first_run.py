"""The first run (`make run`): SQLite, no services, demo data, twice in a row, quietly."""

import re

import pytest

from tests.subprocess_env import PRODUCTION_ENV, child_env, run_manage

ROLES = ["Cashier", "Store Manager", "Program Administrator", "System Administrator", "Fraud Analyst"]


@pytest.mark.slow
def test_migrate_and_seed_on_sqlite_twice_print_the_same_logins(tmp_path):
    env = child_env(
        DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'first.sqlite3'}", OUTBOX_DIR=str(tmp_path / "outbox")
    )
    outputs = []
    for _ in range(2):
        migrate = run_manage("migrate", "--no-input", env=env, timeout=300)
        assert migrate.returncode == 0, migrate.stderr
        seed = run_manage("seed_demo", env=env)
        assert seed.returncode == 0, seed.stderr
        outputs.append(seed.stdout)
    for role in ROLES:
        assert f"{role}: username" in outputs[0], role
    assert "Demo data: 3 stores, 12 members," in outputs[0] and "Demo data: 3 stores, 12 members," in outputs[1]
    uris = [re.findall(r"otpauth://totp/\S+", out) for out in outputs]
    assert len(uris[0]) == 6 and uris[0] == uris[1]  # same devices the second time
    codes = re.findall(r"backup codes: ((?:\w{8} ?){5})", outputs[0])
    assert len(codes) == 6

    otp = run_manage("demo_otp", "cashier", env=env)
    assert otp.returncode == 0 and re.fullmatch(r"\d{6}\n", otp.stdout)

    # the tamper-evident chains are kept on SQLite too: the demo's records all verify
    seal = run_manage("seal_chain", env=env)
    assert seal.returncode == 0, seal.stderr
    verified = run_manage("verify_audit", env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ledger: ok" in verified.stdout and "Audit chains verified." in verified.stdout


@pytest.mark.parametrize("command", [["seed_demo"], ["demo_otp", "cashier"]])
def test_demo_commands_refuse_to_run_without_debug(command):
    result = run_manage(*command, env=child_env(**PRODUCTION_ENV))
    assert result.returncode != 0
    assert "only with DEBUG=1" in result.stderr


@pytest.mark.slow
def test_make_runs_commands_print_the_login_block_last_and_nothing_noisy(tmp_path):
    """The Makefile's `run` steps before the server (migrate -v 0, seed_demo) on a fresh
    database: the terminal ends with the log-in block and the test till; no INFO lines,
    no traceback, no kombu warning, no message bodies (they are files in the outbox)."""
    outbox = tmp_path / "outbox"
    env = child_env(DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'run.sqlite3'}", OUTBOX_DIR=str(outbox))
    migrate = run_manage("migrate", "--no-input", "-v", "0", env=env, timeout=300)
    seed = run_manage("seed_demo", env=env)
    assert migrate.returncode == 0 and seed.returncode == 0, migrate.stderr + seed.stderr
    terminal = migrate.stdout + migrate.stderr + seed.stderr + seed.stdout

    assert "INFO" not in terminal
    assert "Traceback" not in terminal and "celery.app.trace" not in terminal
    assert "No hostname was supplied" not in terminal and "kombu" not in terminal
    assert "Subject:" not in terminal and "Content-Type" not in terminal and "[sms]" not in terminal
    assert "@example.com" not in terminal and "+6012555" not in terminal  # demo members' contact details
    lines = terminal.rstrip().splitlines()
    assert lines[0].startswith("Demo data: 3 stores")
    block = "\n".join(lines[lines.index("Demo log-ins (admin at http://127.0.0.1:8000/admin/)") :])
    for role in ROLES:
        assert f"{role}: username" in block
    assert re.fullmatch(r"\s+X-Till-Key: demo-till\s+secret: \S{40,}", lines[-1])
    assert "http://127.0.0.1:8000/api/docs/" in lines[-2]
    # The messages the demo sent are whole in the outbox, one file each.
    assert any("Your points balance was adjusted" in f.read_text() for f in outbox.glob("*-email.txt"))
