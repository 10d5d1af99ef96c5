"""JSON views: read an item (sync and async), list them, create one, and add to its quantity
in an atomic read-modify-write, the pattern that fails with "database is locked" on the stock
SQLite backend under concurrency."""

import json

from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from shop.models import Item, Move


def as_dict(item: Item) -> dict:
    return {"id": item.id, "name": item.name, "qty": item.qty}


@csrf_exempt
def items(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        body = json.loads(request.body)
        try:
            with transaction.atomic():
                item = Item.objects.create(name=body["name"], qty=body.get("qty", 0))
        except IntegrityError:
            return JsonResponse({"error": "an item of that name exists"}, status=409)
        return JsonResponse(as_dict(item), status=201)
    return JsonResponse({"items": [as_dict(i) for i in Item.objects.order_by("id")]})


async def item(request: HttpRequest, item_id: int) -> JsonResponse:
    # An async view: Django runs the ORM call on a thread (sync_to_async).
    found = await Item.objects.filter(pk=item_id).afirst()
    if found is None:
        return JsonResponse({"error": "no such item"}, status=404)
    return JsonResponse(as_dict(found))


@csrf_exempt
def add(request: HttpRequest, item_id: int) -> JsonResponse:
    n = int(json.loads(request.body)["n"])
    with transaction.atomic():  # BEGIN IMMEDIATE on fastpool.django: read, then write, safely
        try:
            item = Item.objects.get(pk=item_id)
        except Item.DoesNotExist:
            return JsonResponse({"error": "no such item"}, status=404)
        if item.qty + n < 0:
            return JsonResponse({"error": "not enough in stock"}, status=409)
        item.qty += n
        item.save(update_fields=["qty"])
        Move.objects.create(item=item, n=n)
    return JsonResponse(as_dict(item))
