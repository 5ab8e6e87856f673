"""Production settings: secrets from the environment, check --deploy clean, no demo shortcuts."""

import os
import secrets
import subprocess
import sys

from tests.support.processes import ROOT


def _run(code_or_args, **env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PDS_DEMO"))}
    env.update(env_extra)
    return subprocess.run([sys.executable, *code_or_args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_check_deploy_is_clean_in_production():
    res = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], DJANGO_DEBUG="0",
               DJANGO_SECRET_KEY=secrets.token_urlsafe(64), DJANGO_ALLOWED_HOSTS="pds.example.org")
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
               PDS_DEMO_SKIP_2FA="1", PDS_TEST_FAST_HASHER="1")
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
