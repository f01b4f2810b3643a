"""The fault tests' web settings: the test settings with production's persistent database connections, so a
PostgreSQL restart breaks connections opened before it (what CONN_HEALTH_CHECKS is for)."""

from labflow.settings_test import *  # noqa: F403

DATABASES["default"]["CONN_MAX_AGE"] = 60  # noqa: F405
