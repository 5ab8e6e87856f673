# Production image: one image, several processes (web, worker, beat, gateway) chosen by the compose command.
# It runs the production configuration (DJANGO_DEBUG=0); secrets and addresses come from the environment.

# The OHIF viewer, fetched and checked by the same installer as `make install` (scripts/install_ohif.py: the pinned
# @ohif/app from the npm registry, its integrity, the public path rewritten) in a stage of its own, so that Node
# and npm stay out of the image. The build fails if it could not be installed: an image without OHIF would only
# offer the server-rendered viewer.
FROM node:20-bookworm-slim AS ohif
RUN apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/install_ohif.py scripts/
COPY apps/__init__.py apps/
COPY apps/worklist/__init__.py apps/worklist/ohif_release.py apps/worklist/
RUN PDS_OHIF_ROOT=/ohif python3 scripts/install_ohif.py \
    && python3 -c "import sys; sys.path.insert(0, '.'); from apps.worklist import ohif_release as r; \
sys.exit(0 if r.installed('/ohif') else 'OHIF was not installed (npm registry unreachable?)')"

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_DEBUG=0 \
    DJANGO_STATIC_ROOT=/app/staticfiles \
    PDS_VAR_DIR=/data/var PDS_DICOM_STORAGE_ROOT=/data/dicom PDS_MEDIA_ROOT=/data/media \
    PDS_WEB_HOST=0.0.0.0 PDS_WEB_PORT=8000 PDS_OHIF_ROOT=/app/ohif
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/*

# Dependencies in their own layer (read from pyproject.toml), so that a code change does not reinstall them.
# The code itself is not pip-installed: every process runs from /app (`python manage.py`, `python -m ...`).
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt

COPY . .
# Read-only code of the viewer, served by Django under /ohif/ (apps.worklist.ohif).
COPY --from=ohif /ohif /app/ohif
# Static files are collected (hashed and compressed for WhiteNoise) into the image. The keys below exist only
# for this step (settings refuse to load without them in production); they are never used at run time.
RUN DJANGO_SECRET_KEY=build-only-not-a-secret-0123456789-0123456789-0123456789 \
      PDS_AUDIT_KEY=build-only-not-a-secret-0123456789 PDS_VAR_DIR=/tmp/build-var \
      python manage.py collectstatic --noinput -v0 \
    && rm -rf /tmp/build-var \
    && python -m compileall -q apps dicom_gateway pds_platform

# Runs unprivileged; everything it writes lives under /data (volumes in docker-compose.yml).
RUN useradd --system --uid 1000 --home-dir /data pds \
    && mkdir -p /data/var /data/dicom /data/media && chown -R pds:pds /data
USER pds
EXPOSE 8000 11112
CMD ["python", "-m", "gunicorn", "-c", "python:pds_platform.gunicorn_conf", "pds_platform.wsgi:application"]
