"""Settings of the example project: the database is fastpool.django's (the lines that matter
are DATABASES'); the rest is the least a JSON-only Django site needs."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "shop"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "site_config.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": {
        "ENGINE": "fastpool.django",
        # EXAMPLE_DB lets the tests put the file in a temporary directory.
        "NAME": os.environ.get("EXAMPLE_DB", BASE_DIR / "db.sqlite3"),
        # Connections go back to fastpool's pool at the end of each request: cheap.
        "CONN_MAX_AGE": 0,
        "OPTIONS": {
            # Added to or overriding the defaults (WAL, synchronous=normal, ...).
            "pragmas": {"cache_size": -16000},
            "timeout": 10,  # seconds a writer may wait for its turn
        },
    }
}
