"""Sessions kept alive without a database write on every request.

A session expires ``SESSION_COOKIE_AGE`` seconds after its last *save* (idle timeout, PGSSI-S: shared
workstations). Django's ``SESSION_SAVE_EVERY_REQUEST`` gets that by writing the session row on every request: a
viewer loading a 300-slice series through DICOMweb made 300 UPDATEs of the same row, each in its own transaction.
Here the session is saved when something in it changed (as Django does) and otherwise at most once every
``PDS_SESSION_TOUCH_SECONDS``: the idle timeout then runs out between ``SESSION_COOKIE_AGE - PDS_SESSION_TOUCH_SECONDS``
and ``SESSION_COOKIE_AGE`` after the last request, never later (tests/accounts/test_session_touch.py).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponse

TOUCHED = "_pds_touched"  # when the session was last saved (Unix seconds)


def touch_due(touched: object, now: int, every: int) -> bool:
    """Whether a session last saved at ``touched`` must be saved again at ``now`` (a clock gone backwards too)."""
    return not isinstance(touched, int) or not 0 <= now - touched < every


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's, with the throttled save above (``SESSION_SAVE_EVERY_REQUEST`` stays False)."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        session = getattr(request, "session", None)
        # No cookie, or a cookie of no stored session (loading it clears the key): nothing to keep alive, and
        # no session is created for an anonymous visitor.
        if session is not None and session.session_key is not None:
            touched = session.get(TOUCHED)  # loads the session: a key of no stored session is cleared here
            now = int(time.time())
            if session.session_key is not None and touch_due(touched, now, settings.PDS_SESSION_TOUCH_SECONDS):
                session[TOUCHED] = now  # modified: saved below with a new expiry date
        return super().process_response(request, response)
