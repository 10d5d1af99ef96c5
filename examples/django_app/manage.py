#!/usr/bin/env python
"""The example Django project on fastpool.django: ``python manage.py migrate``, then
``python manage.py runserver`` (or any WSGI/ASGI server). See README.md beside this file."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
