"""One model: an item in stock, and the moves that changed its quantity."""

from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=100, unique=True)
    qty = models.IntegerField(default=0)


class Move(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="moves")
    n = models.IntegerField()
