"""Content-Security-Policy (django-csp), with one relaxation for the API documentation pages.

The platform's own pages run no inline script and no inline style (ASVS 5.0 V3.4): the policy in settings
(``CONTENT_SECURITY_POLICY``) is ``'self'`` only, so an injected ``<script>`` or ``onerror=`` does not run.

Swagger UI and Redoc (drf-spectacular, assets from the sidecar package, same origin) are third-party pages:
- Swagger UI's page carries one inline start-up script (it embeds this session's CSRF token, so it changes per
  response). Instead of ``'unsafe-inline'``, the middleware allows exactly the inline scripts of that response,
  by their SHA-256 hash.
- Both pages have an inline ``<style>``, and Redoc's styled-components inject more at run time, which only
  ``'unsafe-inline'`` styles allow; Redoc builds its search index in a ``blob:`` worker.
These pages show the schema, no patient data, and the relaxation applies to their URLs only.

The OHIF viewer (``ohif:*`` routes, under /ohif/) compiles its image codecs (JPEG, JPEG-LS, JPEG 2000, HTJ2K) from
WebAssembly, decodes in workers it may start from ``blob:`` URLs, draws thumbnails as ``data:``/``blob:`` images
and styles its React components at run time: ``'wasm-unsafe-eval'`` (not ``'unsafe-eval'``), ``blob:`` workers and
images, inline styles, on those routes only (the worker scripts it loads from there get the same policy). Still
``'self'`` for every script and connection: no CDN, data only from /dicomweb/.
"""

from __future__ import annotations

import base64
import hashlib
import re

from csp.middleware import CSPMiddleware, PolicyParts
from django.http import HttpRequest, HttpResponseBase

# URL names (resolved view names) of the documentation pages that get the relaxation.
DOCS_VIEWS = frozenset({"api:docs", "api:redoc"})
OHIF_VIEWS = frozenset({"ohif:app", "ohif:file"})
OHIF_POLICY = {
    "script-src": ["'self'", "'wasm-unsafe-eval'"],
    "worker-src": ["'self'", "blob:"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:"],
    "font-src": ["'self'", "data:"],
}
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def inline_script_hashes(html: bytes) -> list[str]:
    return [f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'"
            for body in _INLINE_SCRIPT.findall(html)]


class PlatformCSPMiddleware(CSPMiddleware):
    def get_policy_parts(self, request: HttpRequest, response: HttpResponseBase,
                         report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        match = getattr(request, "resolver_match", None)
        if match is not None and match.view_name in OHIF_VIEWS:
            parts.replace = {**(parts.replace or {}), **OHIF_POLICY}
            return parts
        if match is None or match.view_name not in DOCS_VIEWS or getattr(response, "streaming", False):
            return parts
        content = getattr(response, "content", b"")
        parts.replace = {
            **(parts.replace or {}),
            "script-src": ["'self'", *inline_script_hashes(content)],
            "style-src": ["'self'", "'unsafe-inline'"],
            "worker-src": ["'self'", "blob:"],
        }
        return parts
