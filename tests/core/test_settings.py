"""Production settings: secrets from the environment, check --deploy clean, no demo shortcuts."""

import os
import secrets
import subprocess
import sys

import pytest

from tests.support.processes import ROOT


def _run(code_or_args, **env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PDS_DEMO", "PDS_AUDIT"))}
    env.update(env_extra)
    return subprocess.run([sys.executable, *code_or_args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_check_deploy_is_clean_in_production():
    res = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], DJANGO_DEBUG="0",
               DJANGO_SECRET_KEY=secrets.token_urlsafe(64), PDS_AUDIT_KEY=secrets.token_urlsafe(48),
               DJANGO_ALLOWED_HOSTS="pds.example.org")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "no issues" in res.stdout


def test_production_refuses_to_start_without_secret_key():
    res = _run(["manage.py", "check"], DJANGO_DEBUG="0")
    assert res.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in res.stderr


def test_production_never_skips_two_factor_nor_uses_fast_hasher():
    code = ("import django,os;os.environ.setdefault('DJANGO_SETTINGS_MODULE','pds_platform.settings');django.setup();"
            "from django.conf import settings as s;"
            "print(s.PDS_DEMO_SKIP_2FA, 'MD5' in s.PASSWORD_HASHERS[0], s.SESSION_COOKIE_SECURE, s.DEBUG)")
    res = _run(["-c", code], DJANGO_DEBUG="0", DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
               PDS_AUDIT_KEY=secrets.token_urlsafe(48), PDS_DEMO_SKIP_2FA="1", PDS_TEST_FAST_HASHER="1")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[-4:] == ["False", "False", "True", "False"]


def test_embedded_default_needs_no_server():
    code = ("import django,os;os.environ.setdefault('DJANGO_SETTINGS_MODULE','pds_platform.settings');django.setup();"
            "from django.conf import settings as s;"
            "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL)")
    env_clean = {"DATABASE_URL": "", "CELERY_BROKER_URL": "", "REDIS_URL": ""}
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if k not in env_clean})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[-2:] == ["django.db.backends.sqlite3", "filesystem://"]


BOOLEAN_SETTINGS = ("DJANGO_DEBUG", "PDS_TEST_FAST_HASHER", "PDS_DEMO_SKIP_2FA", "PDS_LOAD_DEMO", "PDS_AXES_ENABLED",
                    "PDS_BROKER_FSYNC", "CELERY_TASK_ALWAYS_EAGER", "DJANGO_EMAIL_USE_TLS", "PDS_WEBHOOK_ALLOW_HTTP",
                    "PDS_WEBHOOK_ALLOW_PRIVATE", "DJANGO_SECURE_SSL_REDIRECT", "PDS_DICOMWEB_PREPARE_METADATA")
_PRINT_FLAGS = ("import pds_platform.settings as s;"
                "print(s.DEBUG, s.AXES_ENABLED, s.CELERY_TASK_ALWAYS_EAGER, s.EMAIL_USE_TLS, s.PDS_WEBHOOK_ALLOW_HTTP,"
                " s.PDS_WEBHOOK_ALLOW_PRIVATE)")


def test_every_boolean_setting_is_read_strictly():
    """Each boolean of pds_platform/settings.py goes through env.flag (the list above is all of them)."""
    import re

    text = (ROOT / "pds_platform" / "settings.py").read_text()
    assert "env.bool(" not in text
    assert set(re.findall(r'env\.flag\("(\w+)"', text)) == set(BOOLEAN_SETTINGS)


def test_a_misspelt_debug_refuses_to_start_and_names_the_variable():
    res = _run(["manage.py", "check"], DJANGO_DEBUG="flase")
    assert res.returncode != 0
    assert "ImproperlyConfigured" in res.stderr
    assert "DJANGO_DEBUG='flase' is not a boolean" in res.stderr


@pytest.mark.parametrize("name", BOOLEAN_SETTINGS[1:])  # DJANGO_DEBUG: the test above
def test_a_misspelt_boolean_is_refused_in_production_and_development(name):
    # A production configuration that would start otherwise: the misspelt flag alone stops it. Variables read
    # only in one configuration (the fast hasher, the SSL redirect, the filesystem broker's fsync) too.
    for debug in ("0", "1"):
        res = _run(["-c", "import pds_platform.settings"], DJANGO_DEBUG=debug, DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
                   PDS_AUDIT_KEY=secrets.token_urlsafe(48), **{name: "ture"})
        assert res.returncode != 0, (name, debug)
        assert f"ImproperlyConfigured: {name}='ture' is not a boolean" in res.stderr, res.stderr


def test_booleans_accept_true_false_1_0_yes_no_on_off_in_any_case():
    spellings = {"TRUE": "True", "False": "False", "1": "True", "0": "False", "Yes": "True", "no": "False",
                 "ON": "True", "off": "False", " true ": "True"}
    for raw, expected in spellings.items():
        res = _run(["-c", _PRINT_FLAGS], DJANGO_DEBUG="1", PDS_AXES_ENABLED=raw, CELERY_TASK_ALWAYS_EAGER=raw,
                   DJANGO_EMAIL_USE_TLS=raw, PDS_WEBHOOK_ALLOW_HTTP=raw, PDS_WEBHOOK_ALLOW_PRIVATE=raw)
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == ["True", *[expected] * 5], raw
    unset = {k: v for k, v in os.environ.items() if k not in BOOLEAN_SETTINGS}  # the defaults
    res = subprocess.run([sys.executable, "-c", _PRINT_FLAGS], cwd=ROOT, env=unset, capture_output=True, text=True,
                         timeout=120)
    assert res.stdout.split() == ["True", "True", "False", "False", "False", "False"]


@pytest.mark.parametrize("utc_now", ["12:00:00", "18:30:00", "08:30:00", "18:00:00", "08:00:00", "00:00:00"])
def test_check_is_clean_at_any_time_of_day(monkeypatch, utc_now):
    """Django flags a field whose default is a fixed time (W161) when the check runs within seconds of that time
    of day: ``check --deploy`` failed at noon UTC on the Saturday PDS start (12:00). Defaults of times are callables,
    so the check says the same thing at every hour."""
    from django.core import checks
    from django.utils import timezone

    hour, minute, second = (int(p) for p in utc_now.split(":"))
    frozen = timezone.now().replace(hour=hour, minute=minute, second=second, microsecond=0)
    monkeypatch.setattr(timezone, "now", lambda: frozen)
    fixed_defaults = [m for m in checks.run_checks(tags=[checks.Tags.models]) if m.id == "fields.W161"]
    assert fixed_defaults == []
