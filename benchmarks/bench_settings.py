"""Settings for the web benchmarks: production settings plus one bare JSON view (benchmarks.bench_urls).

Everything else is read from the environment exactly as in labflow.settings; the benchmark scripts
set DATABASE_URL, REDIS_URL, CELERY_TASK_DEFAULT_QUEUE and CELERY_BEAT_SCHEDULE_FILENAME themselves.
"""

import os

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECURE_HTTPS", "false")  # plain http on loopback
os.environ.setdefault("SECRET_KEY", "labflow-benchmark-only-secret-key-not-for-production-use-0123456789")

from labflow.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.bench_urls"

# Static files straight from the finders (as labflow.settings_test does): no collectstatic step, nothing
# written into the project. Neither benchmark measures static files (the page loads them once).
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
STATIC_ROOT = None  # type: ignore[assignment,unused-ignore]
WHITENOISE_USE_FINDERS = True
