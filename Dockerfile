# Production image: one image, several processes (web, worker, beat, gateway) chosen by the compose command.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY pds_platform ./pds_platform
COPY apps ./apps
COPY dicom_gateway ./dicom_gateway
RUN pip install --no-cache-dir .
COPY . .
RUN DJANGO_DEBUG=0 DJANGO_SECRET_KEY=build-only-not-a-secret-0123456789-0123456789-0123456789 \
    python manage.py collectstatic --noinput
RUN useradd --system --uid 1000 pds && mkdir -p /data/dicom /data/media && chown -R pds /data
USER pds
EXPOSE 8000 11112
CMD ["gunicorn", "pds_platform.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
