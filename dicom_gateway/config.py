"""Gateway configuration: GatewayConfig from the settings, accepted SOP classes and syntaxes, TLS context."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

VERIFICATION = "1.2.840.10008.1.1"
STORAGE_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2": "CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.2.1": "Enhanced CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.4": "MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.4.1": "Enhanced MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.1": "Computed Radiography Image Storage",
    "1.2.840.10008.5.1.4.1.1.1.1": "Digital X-Ray Image Storage - For Presentation",
    "1.2.840.10008.5.1.4.1.1.1.1.1": "Digital X-Ray Image Storage - For Processing",
    # Ultrasound is not read remotely, but a modality may send it anyway: stored and flagged, never routed.
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound Image Storage",
    "1.2.840.10008.5.1.4.1.1.3.1": "Ultrasound Multi-frame Image Storage",
}
TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent by old modalities)
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    # Compressed: accepted and stored as received.
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203", "1.2.840.10008.1.2.5",
]


@dataclass(frozen=True)
class GatewayConfig:
    aet: str
    host: str
    port: int
    tls_port: int
    tls_cert: str
    tls_key: str
    tls_ca: str
    storage_root: Path
    min_free_mb: int
    max_associations: int
    max_pdu: int
    workers: int
    nice: int = 0

    @classmethod
    def from_settings(cls) -> GatewayConfig:
        return cls(aet=settings.PDS_DICOM_AET, host=settings.PDS_DICOM_HOST, port=settings.PDS_DICOM_PORT,
                   tls_port=settings.PDS_DICOM_TLS_PORT, tls_cert=settings.PDS_DICOM_TLS_CERT,
                   tls_key=settings.PDS_DICOM_TLS_KEY, tls_ca=settings.PDS_DICOM_TLS_CA,
                   storage_root=Path(settings.PDS_DICOM_STORAGE_ROOT), min_free_mb=settings.PDS_DICOM_MIN_FREE_MB,
                   max_associations=settings.PDS_DICOM_MAX_ASSOCIATIONS, max_pdu=settings.PDS_DICOM_MAX_PDU,
                   workers=max(1, settings.PDS_DICOM_WORKERS), nice=min(19, max(0, settings.PDS_DICOM_NICE)))

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls_port and self.tls_cert and self.tls_key)



def tls_context(config: GatewayConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config.tls_cert, config.tls_key)
    if config.tls_ca:  # client certificates required when a CA is configured
        ctx.load_verify_locations(config.tls_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
