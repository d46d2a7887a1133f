"""Django 3.2 ORM on psycopg2, with a minimal settings module (configured here, no project)."""
import os
import sys
from urllib.parse import urlparse

ROWS = 50
_configured = False


def setup(url):
    global _configured
    import django
    from django.conf import settings
    u = urlparse(url)
    database = {"ENGINE": "django.db.backends.postgresql", "NAME": u.path.lstrip("/"),
                "USER": u.username, "HOST": u.hostname, "PORT": u.port}
    if not _configured:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        settings.configure(INSTALLED_APPS=["corpusapp"], DATABASES={"default": database},
                           USE_TZ=True, DEFAULT_AUTO_FIELD="django.db.models.AutoField")
        django.setup()
        _configured = True
    else:
        from django.db import connections
        connections.close_all()
        settings.DATABASES["default"].update(database)
    from corpusapp import models
    return models


def django_fk_in_loop(url):
    m = setup(url)
    for order in m.Order.objects.all():
        order.customer.name


def django_reverse_in_loop(url):
    m = setup(url)
    for customer in m.Customer.objects.all():
        list(customer.orders.all())


def django_select_related(url):
    m = setup(url)
    for order in m.Order.objects.select_related("customer"):
        order.customer.name


def django_prefetch_related(url):
    m = setup(url)
    for customer in m.Customer.objects.prefetch_related("orders"):
        list(customer.orders.all())


def django_save_per_row(url):
    m = setup(url)
    for i in range(ROWS):
        m.Event(customer_id=i % 20 + 1, kind="click", amount=i).save()


def django_bulk_create(url):
    m = setup(url)
    m.Event.objects.bulk_create([m.Event(customer_id=i % 20 + 1, kind="click", amount=i)
                                 for i in range(ROWS)])
