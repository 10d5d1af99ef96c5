"""Django's database backend on fastpool: ``"ENGINE": "fastpool.django"`` (docs/django.md).

Django imports ``fastpool.django.base`` by that name; importing this package alone imports
nothing from Django, so ``import fastpool`` never needs it.
"""
