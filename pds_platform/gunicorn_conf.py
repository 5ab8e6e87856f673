"""Gunicorn settings of the web app, from the environment: `gunicorn -c python:pds_platform.gunicorn_conf ...`.

The Docker image and docker compose's ``web`` service start gunicorn with it, so that a container serves the
web app as ``manage.py run_platform`` does (same workers, threads, timeouts, access log and optional TLS).
Plain module-level names are what gunicorn reads; command-line flags still override them.
"""

from __future__ import annotations

import os

bind = f"{os.environ.get('PDS_WEB_HOST', '127.0.0.1')}:{os.environ.get('PDS_WEB_PORT', '8000')}"
workers = int(os.environ.get("PDS_WEB_WORKERS", "2"))
# Threads: a page waiting on the database or a PDF render does not hold a whole worker process.
threads = 4
timeout = 120
graceful_timeout = 10
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
# gunicornc's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl): two platforms on one
# machine (a demo and a test run) would take it from each other. Nothing here uses it.
control_socket_disable = True

_cert, _key = os.environ.get("PDS_WEB_TLS_CERT", ""), os.environ.get("PDS_WEB_TLS_KEY", "")
if bool(_cert) != bool(_key):
    raise SystemExit("PDS_WEB_TLS_CERT and PDS_WEB_TLS_KEY must be set together")
if _cert:
    certfile, keyfile = _cert, _key
