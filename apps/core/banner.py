"""What the run_platform banner shows of the apps above core: an app registers a provider in its
AppConfig.ready() (as ROLE_HOME is filled), so core imports none of them."""

from __future__ import annotations

from collections.abc import Callable

# Each provider returns the active DICOM senders as (calling AE title, establishment name), ordered.
DICOM_SENDER_PROVIDERS: list[Callable[[], list[tuple[str, str]]]] = []


def dicom_senders() -> list[tuple[str, str]]:
    return [sender for provider in DICOM_SENDER_PROVIDERS for sender in provider()]


# Each provider returns lines about the web app's optional parts (the OHIF viewer installed or not).
WEB_STATUS_PROVIDERS: list[Callable[[], list[str]]] = []


def web_status() -> list[str]:
    return [line for provider in WEB_STATUS_PROVIDERS for line in provider()]
