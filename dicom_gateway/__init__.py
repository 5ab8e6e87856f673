"""The DICOM gateway (its own process): see dicom_gateway.server. Started by ``manage.py run_gateway``."""
