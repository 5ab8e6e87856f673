"""Who may do what: the permission matrix (role x route x action), written once, as data.

Invariants:

- Every route of the URLconf has an entry in :data:`MATRIX`, keyed by its URL name (``namespace:name``; the
  dotted path of the view for a route without a name). A route without an entry is refused to everyone
  (fail closed), and ``tests/accounts/test_permission_matrix.py`` fails as soon as a route is added without one.
- The matrix decides whether a *role* may use a route at all. *Which objects* a principal reaches through an
  allowed route is decided elsewhere, once, by the selectors (``apps.worklist.selectors.cases_visible_to``):
  an object outside the principal's perimeter is "not found", never "forbidden".
- Two enforcement points read this table and nothing else: the web middleware
  (:class:`apps.accounts.authorization.PermissionMatrixMiddleware`) for every page, the admin and third-party
  views included, and the DRF permission (:class:`apps.api.permissions.MatrixPermission`) for the API, where
  the principal is only known once DRF has authenticated the API key.

An entry maps an *action* to the roles allowed to perform it:

- web pages: ``"view"`` (GET, HEAD, OPTIONS) and ``"submit"`` (POST, PUT, PATCH, DELETE);
- ``worklist:action`` (``/worklist/c/<id>/do/<name>``): the name of the case action (``sign``, ``claim``…);
- API viewsets: the DRF action (``list``, ``retrieve``, ``create``, ``cancel``…); other API views: ``view`` and
  ``submit`` as for pages. An OPTIONS request (DRF's ``metadata``) is allowed to whoever may do any action there.

Roles are the values of :class:`apps.accounts.models.Role` plus pseudo-roles: ``anonymous`` (no session),
``superuser`` (the platform's technical administrator, whatever their role) and, for API keys, ``integration``
(every key) and ``integration_rw`` (a read-write key). A user *account* with the role ``integration`` gets no
rights: keys are not accounts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser

from apps.accounts.models import Role

ANONYMOUS = "anonymous"
SUPERUSER = "superuser"
INTEGRATION = "integration"
INTEGRATION_RW = "integration_rw"

COORDINATOR = Role.ARS_COORDINATOR.value
ESTABLISHMENT_ADMIN = Role.ESTABLISHMENT_ADMIN.value
PHYSICIAN = Role.EMERGENCY_PHYSICIAN.value
RADIOLOGIST = Role.RADIOLOGIST.value
RADIOGRAPHER = Role.RADIOGRAPHER.value

# Roles a person's account may hold (Role.INTEGRATION is for keys, never for an account).
HUMAN_ROLES = frozenset({COORDINATOR, ESTABLISHMENT_ADMIN, PHYSICIAN, RADIOLOGIST, RADIOGRAPHER})
ALL_ROLES = frozenset({*HUMAN_ROLES, SUPERUSER, INTEGRATION, INTEGRATION_RW, ANONYMOUS})

READ = "view"
WRITE = "submit"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# DRF's implicit action for OPTIONS: it only describes a route.
DESCRIBE_ACTIONS = frozenset({"metadata"})


def roles(*names: str) -> frozenset[str]:
    return frozenset(names)


def _both(allowed: frozenset[str]) -> dict[str, frozenset[str]]:
    return {READ: allowed, WRITE: allowed}


# --- Groups of roles, named by what they do here ------------------------------------------------------------

PUBLIC = ALL_ROLES
PEOPLE = roles(*HUMAN_ROLES, SUPERUSER)
# The requesting site's clinical staff: they request, follow and answer for their establishment.
SITE_CLINICAL = roles(PHYSICIAN, RADIOGRAPHER)
# Who reads an identified case (patient identity, question, report): its site's clinical staff, the
# radiologists taking part in it, and the coordinator of the region (follow-up of incidents and escalations).
# Not the establishment administrator: aggregates only.
CASE_READERS = roles(*SITE_CLINICAL, RADIOLOGIST, COORDINATOR)
# The images: the radiologists who read them and the site that sent them; not the coordinator.
IMAGE_READERS = roles(*SITE_CLINICAL, RADIOLOGIST)
STEERING = roles(COORDINATOR, ESTABLISHMENT_ADMIN, SUPERUSER)
REGIONAL_ADMIN = roles(COORDINATOR, SUPERUSER)
# The indicators are shared by every actor (aggregates, scoped to their establishment): not the radiographer.
INDICATOR_READERS = roles(*STEERING, RADIOLOGIST, PHYSICIAN)
API_READERS = roles(*CASE_READERS, INTEGRATION)
# DICOMweb is the images' service (OHIF reads through it): the image readers and the API keys, as the web viewers.
IMAGE_API_READERS = roles(*IMAGE_READERS, INTEGRATION)
API_WRITERS = roles(*SITE_CLINICAL, INTEGRATION_RW)
# The regional directory (establishments): no patient data.
DIRECTORY_READERS = roles(*API_READERS, ESTABLISHMENT_ADMIN)

# ``MATRIX[route][action]`` -> roles allowed. One line per route; say why when it is not obvious.
MATRIX: dict[str, dict[str, frozenset[str]]] = {
    # Platform and login: open to everyone; the views (and the second-factor middleware) do their own checks.
    "healthz": {READ: PUBLIC},
    "set_language": _both(PUBLIC),
    "home": {READ: PEOPLE},  # sends each person to their role's landing page
    "accounts:login": _both(PUBLIC),
    "accounts:otp_verify": _both(PUBLIC),
    "accounts:otp_setup": _both(PUBLIC),
    "accounts:logout": _both(PUBLIC),

    # Radiologist's worklist.
    "worklist:worklist": {READ: roles(RADIOLOGIST)},
    "worklist:worklist_rows": {READ: roles(RADIOLOGIST)},
    # Requesting site: tonight's requests (the coordinator follows the region's), matching, new request.
    "worklist:site_requests": {READ: roles(*SITE_CLINICAL, COORDINATOR)},
    "worklist:site_requests_rows": {READ: roles(*SITE_CLINICAL, COORDINATOR)},
    "worklist:matching": _both(SITE_CLINICAL),
    "worklist:request_new": _both(SITE_CLINICAL),
    # One case.
    "worklist:case": {READ: CASE_READERS},
    "worklist:case_live": {READ: CASE_READERS},
    "worklist:case_priors": {READ: CASE_READERS},
    "worklist:report_pdf": {READ: CASE_READERS},
    "worklist:viewer": {READ: IMAGE_READERS},
    "worklist:slice": {READ: IMAGE_READERS},
    # The OHIF viewer (its code; the images come through /dicomweb/ and its visibility rule).
    "worklist:ohif": {READ: IMAGE_READERS},
    "ohif:app": {READ: IMAGE_READERS},
    "ohif:file": {READ: IMAGE_READERS},
    # Case actions (POST /worklist/c/<id>/do/<name>): the radiologist's acts; the site answers questions.
    "worklist:action": {
        "validate": roles(RADIOLOGIST),
        "info": SITE_CLINICAL,
        "claim": roles(RADIOLOGIST),
        "release": roles(RADIOLOGIST),
        "handoff": roles(RADIOLOGIST),
        "acknowledge": roles(RADIOLOGIST),
        "decline": roles(RADIOLOGIST),
        "hand_back": roles(RADIOLOGIST),
        "draft": roles(RADIOLOGIST),
        "sign": roles(RADIOLOGIST),
        "addendum": roles(RADIOLOGIST),
        "critical_call": roles(RADIOLOGIST),
        "expert": roles(RADIOLOGIST),
        "expert_opinion": roles(RADIOLOGIST),
        # The site's last stage: the radiographer logs the acquisition, the physician confirms a critical call.
        "acquisition": SITE_CLINICAL,
        "critical_confirm": roles(PHYSICIAN),
        # A prior study from the site PACS, on demand (apps.worklist.priors): whoever reads the case's images.
        "prior_retrieve": IMAGE_READERS,
        "priors_query": IMAGE_READERS,  # query the site PACS again after a failure
    },

    # Tele-act record (identified): as the case.
    "traceability:record": {READ: CASE_READERS},
    "traceability:record_download": {READ: CASE_READERS},

    # Steering: the coordinator's region; the establishment administrator's, radiologist's and physician's
    # establishment, read-only aggregates (the indicators are shared by all actors).
    "dashboards:home": {READ: INDICATOR_READERS},
    "dashboards:table_csv": {READ: INDICATOR_READERS},
    "rosters:coverage": {READ: REGIONAL_ADMIN},
    "rosters:calendar": {READ: REGIONAL_ADMIN},
    # The iCal feed is fetched by calendar apps without a session: the URL carries a per-user secret.
    "rosters:ical": {READ: PUBLIC},
    "rosters:my_ical": {READ: roles(RADIOLOGIST)},
    "rosters:interventions": _both(roles(RADIOLOGIST)),  # their own astreintes; the coordinator uses the admin
    # Everyone's own in-app notifications.
    "routing:notifications": {READ: PEOPLE},
    "routing:notifications_json": {READ: PEOPLE},
    "routing:notification_read": {WRITE: PEOPLE},
    # The coordinator's console: cases waiting on them, who is on duty, assignment by hand (their region's).
    "routing:console": {READ: roles(COORDINATOR)},
    "routing:console_assign": {WRITE: roles(COORDINATOR)},

    # Regional administration (Django admin). Within it, model permissions and the region-scoped ModelAdmins
    # (apps.core.admin_mixins, apps.accounts.admin) decide further. The login page forwards to the platform's.
    "admin:*": _both(REGIONAL_ADMIN),
    "admin:login": _both(PUBLIC),
    "admin:logout": _both(PEOPLE),
    # Uploaded files (signed agreements), served by Django only in DEBUG (DEBUG_ONLY_ROUTES).
    "django.views.static.serve": {READ: REGIONAL_ADMIN},

    # --- REST API (apps.api) ---
    "api:establishment-list": {"list": DIRECTORY_READERS},
    "api:establishment-detail": {"retrieve": DIRECTORY_READERS},
    "api:request-list": {"list": API_READERS, "create": API_WRITERS},
    "api:request-detail": {"retrieve": API_READERS},
    "api:request-cancel": {"cancel": API_WRITERS},
    "api:request-events": {"events": API_READERS},
    "api:request-assignment": {"assignment": API_READERS},
    "api:request-report": {"report": API_READERS},
    "api:request-report-pdf": {"report_pdf": API_READERS},
    "api:request-addenda": {"addenda": API_READERS},
    "api:request-tele-act": {"tele_act": API_READERS},
    "api:study-list": {"list": API_READERS},
    "api:study-detail": {"retrieve": API_READERS},
    "api:worklist-list": {"list": API_READERS},
    # A private provider's queue: its radiologists, and its own system (taking a case is a write).
    "api:provider-queue-list": {"list": roles(RADIOLOGIST, INTEGRATION)},
    "api:provider-queue-claim": {"claim": roles(RADIOLOGIST, INTEGRATION_RW)},
    # Webhook subscriptions belong to an API key.
    "api:webhook-list": {"list": roles(INTEGRATION), "create": roles(INTEGRATION_RW)},
    "api:webhook-detail": {"retrieve": roles(INTEGRATION), "destroy": roles(INTEGRATION_RW)},
    "api:webhook-deliveries": {"deliveries": roles(INTEGRATION)},
    # Who is on duty / tonight's coverage: no patient data, but practitioners' names and phones.
    "api:on-call": {READ: API_READERS},
    "api:coverage": {READ: API_READERS},
    "api:fhir-servicerequest": {READ: API_READERS},
    "api:fhir-imagingstudy": {READ: API_READERS},
    "api:fhir-diagnosticreport": {READ: API_READERS},
    "api:fhir-organization": {READ: DIRECTORY_READERS},
    "api:fhir-practitioner": {READ: API_READERS},
    # DICOMweb (PS3.18, /dicomweb/): images of the studies the caller may see; not the coordinator, who reads the
    # case but not its images (as worklist:viewer and ohif:*).
    # STOW-RS (POST): an establishment's read-write API key, for that establishment (apps.api.stow).
    "dicomweb:studies": {READ: IMAGE_API_READERS, WRITE: roles(INTEGRATION_RW)},
    "dicomweb:study-series": {READ: IMAGE_API_READERS},
    "dicomweb:study-instances": {READ: IMAGE_API_READERS},
    "dicomweb:series-instances": {READ: IMAGE_API_READERS},
    "dicomweb:study": {READ: IMAGE_API_READERS, WRITE: roles(INTEGRATION_RW)},
    "dicomweb:study-metadata": {READ: IMAGE_API_READERS},
    "dicomweb:series": {READ: IMAGE_API_READERS},
    "dicomweb:series-metadata": {READ: IMAGE_API_READERS},
    "dicomweb:instance": {READ: IMAGE_API_READERS},
    "dicomweb:instance-metadata": {READ: IMAGE_API_READERS},
    "dicomweb:frames": {READ: IMAGE_API_READERS},
    "dicomweb:rendered": {READ: IMAGE_API_READERS},
    # The API's description is public (no data).
    "api:schema": {READ: PUBLIC},
    "api:docs": {READ: PUBLIC},
    "api:redoc": {READ: PUBLIC},
}


# Routes that exist only when DEBUG is on (pds_platform/urls.py), hence absent from a test's URLconf.
DEBUG_ONLY_ROUTES = frozenset({"django.views.static.serve"})


def entry_for(route: str) -> Mapping[str, frozenset[str]] | None:
    """The matrix entry of a route: its own, or its namespace's wildcard (``admin:*``); None if it has none."""
    entry = MATRIX.get(route)
    if entry is None and ":" in route:
        entry = MATRIX.get(route.rsplit(":", 1)[0] + ":*")
    return entry


def roles_of(principal: Any) -> frozenset[str]:
    """The roles under which ``principal`` (a user, AnonymousUser, or an API key's Integration) acts."""
    if principal is None or not getattr(principal, "is_authenticated", False):
        return frozenset({ANONYMOUS})
    if not isinstance(principal, AbstractBaseUser):
        # An API key (apps.api.authentication.Integration, which this layer does not import).
        if getattr(principal, "role", "") != INTEGRATION:
            return frozenset()
        return frozenset({INTEGRATION, INTEGRATION_RW} if getattr(principal, "can_write", False) else {INTEGRATION})
    if not getattr(principal, "is_active", False):
        return frozenset()
    held: set[str] = set()
    role = getattr(principal, "role", "")
    if role in HUMAN_ROLES:
        held.add(role)
    if getattr(principal, "is_superuser", False):
        held.add(SUPERUSER)
    return frozenset(held)


def action_for_method(method: str) -> str:
    return READ if method.upper() in SAFE_METHODS else WRITE


def allowed_roles(route: str, action: str) -> frozenset[str]:
    """Roles allowed to perform ``action`` on ``route`` (empty when the matrix says nothing: refused)."""
    entry = entry_for(route)
    if entry is None:
        return frozenset()
    if action in DESCRIBE_ACTIONS:
        return frozenset().union(*entry.values())
    return entry.get(action, frozenset())


def is_allowed(principal: Any, route: str, action: str) -> bool:
    return bool(roles_of(principal) & allowed_roles(route, action))
