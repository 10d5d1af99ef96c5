"""Drive the example from 8 threads through Django's test client (every request runs the full
handler: middleware, views, the ORM, the connection going back to fastpool's pool at the end),
then print a JSON summary. ``python manage.py migrate && python drive.py``."""

import json
import os
import threading
from collections import Counter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_config.settings")

import django

django.setup()

from django.test import Client  # noqa: E402
from shop.models import Item, Move  # noqa: E402

THREADS, REQUESTS = 8, 50


def main() -> None:
    client = Client()
    ids = [
        client.post("/items", {"name": f"item-{i}"}, "application/json").json()["id"]
        for i in range(4)
    ]
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def worker(t: int) -> None:
        mine = Client()  # one client per thread, as one browser per user
        for r in range(REQUESTS):
            item_id = ids[(t + r) % len(ids)]
            if r % 2:
                resp = mine.post(f"/items/{item_id}/add", {"n": 1}, "application/json")
            else:
                resp = mine.get(f"/items/{item_id}")
            with lock:
                statuses[resp.status_code] += 1

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    duplicate = client.post("/items", {"name": "item-0"}, "application/json").status_code
    print(
        json.dumps(
            {
                "statuses": {str(k): v for k, v in sorted(statuses.items())},
                "total_qty": sum(Item.objects.values_list("qty", flat=True)),
                "moves": Move.objects.count(),
                "duplicate_name": duplicate,
            }
        )
    )


if __name__ == "__main__":
    main()
