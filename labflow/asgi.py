"""ASGI entry point: gunicorn with uvicorn workers serves every page and the alert push stream
(docs/architecture.md §3 Push). labflow/wsgi.py still serves everything but the stream."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labflow.settings")
# Connections from a pool of this size per worker (labflow/settings.py: one thread per request under ASGI).
os.environ.setdefault("DATABASE_POOL", "8")

application = get_asgi_application()
