"""The Celery application: settings come from Django's (the CELERY_ namespace)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "diploi_site.settings")

app = Celery("diploi_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
