"""Django models over the corpus' tables (made by schema.py, so unmanaged)."""
from django.db import models


class Customer(models.Model):
    name = models.TextField()

    class Meta:
        app_label = "corpusapp"
        db_table = "customers"
        managed = False


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    total = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        app_label = "corpusapp"
        db_table = "orders"
        managed = False


class Event(models.Model):
    customer_id = models.IntegerField()
    kind = models.TextField()
    amount = models.IntegerField()

    class Meta:
        app_label = "corpusapp"
        db_table = "events"
        managed = False
