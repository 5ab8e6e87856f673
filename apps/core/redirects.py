"""Where a ``next`` parameter may send the browser: a path on this site, never another origin.

Every view that redirects to a user-supplied ``next`` goes through :func:`safe_next`, so that a crafted link
(``?next=//evil.example``, ``https://evil.example``, ``/\\evil.example``) cannot turn a case action or a login
into an open redirect (ASVS 5.0 V3.7).
"""

from __future__ import annotations

from django.http import HttpRequest
from django.shortcuts import resolve_url
from django.utils.http import url_has_allowed_host_and_scheme


def safe_next(request: HttpRequest, fallback: str, *, param: str = "next") -> str:
    """The request's ``next`` (POST first, then GET) when it is a same-origin path, else ``fallback``.

    Only a path is accepted (it starts with a single "/"): an absolute URL, even to this host, is refused, since
    nothing in the platform builds one and the host header is the client's to choose.
    """
    target = request.POST.get(param) or request.GET.get(param) or ""
    if is_safe_path(target, request):
        return target
    return resolve_url(fallback)


def is_safe_path(target: str, request: HttpRequest) -> bool:
    if not target.startswith("/") or target.startswith("//") or target.startswith("/\\"):
        return False
    return url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure())
