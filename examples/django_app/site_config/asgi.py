"""ASGI entry point: ``uvicorn site_config.asgi:application`` (the async view runs the ORM on
asgiref's thread, as Django's async ORM calls do)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_config.settings")
application = get_asgi_application()
