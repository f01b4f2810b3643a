"""Test overrides: same engines as production, fast hashing, plain HTTP."""

import os
from datetime import timedelta

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECURE_HTTPS", "false")
os.environ.setdefault("SECRET_KEY", "labflow-test-only-secret-key-not-for-production-use-0123456789")

from labflow.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
AXES_ENABLED = True
STATIC_ROOT = None  # type: ignore[assignment,unused-ignore]  # whitenoise serves from the finders in tests
WHITENOISE_USE_FINDERS = True
# Most tests look at an overdue alert the moment its deadline passes; the hold has tests of its own.
ALERT_OVERDUE_HOLD = timedelta(minutes=env.float("ALERT_OVERDUE_HOLD_MINUTES", default=0))  # noqa: F405
