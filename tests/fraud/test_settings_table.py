"""The README's fraud settings tables agree with settings.FRAUD (``manage.py fraud_settings``)."""

from pathlib import Path

from django.conf import settings
from django.core.management import call_command

from fraud.config import README_TABLE_END, README_TABLE_START, settings_markdown


def test_the_readme_lists_every_fraud_setting_as_generated():
    readme = (Path(settings.BASE_DIR) / "README.md").read_text(encoding="utf-8")
    assert README_TABLE_START in readme and README_TABLE_END in readme, "the README lost its fraud settings table"
    table = readme.split(README_TABLE_START, 1)[1].split(README_TABLE_END, 1)[0].strip()
    assert table == settings_markdown(), (
        "README.md's fraud settings and settings.FRAUD differ: paste `python manage.py fraud_settings` into the README"
    )


def test_every_detector_and_threshold_has_its_variable():
    table = settings_markdown()
    for code, entry in settings.FRAUD["detectors"].items():
        for key in entry:
            if key != "family":
                assert f"`FRAUD_{code.upper()}_{key.upper()}`=" in table, (code, key)


def test_a_changed_threshold_shows_in_the_table(settings):
    settings.FRAUD = {**settings.FRAUD, "detectors": {**settings.FRAUD["detectors"]}}
    settings.FRAUD["detectors"]["return_rate"] = {**settings.FRAUD["detectors"]["return_rate"], "rate_percent": 35}
    assert "`FRAUD_RETURN_RATE_RATE_PERCENT`=35" in settings_markdown()


def test_the_command_prints_the_table(capsys):
    call_command("fraud_settings")
    out = capsys.readouterr().out
    assert out.startswith(README_TABLE_START) and settings_markdown() in out
