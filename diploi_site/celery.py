"""The Celery application: settings come from Django's (the CELERY_ namespace)."""

import os

from celery import Celery
from celery.signals import worker_init, worker_ready

from diploi_site.process import set_process_name

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "diploi_site.settings")

app = Celery("diploi_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _name_the_process(**_):
    # Standalone's embedded worker shares its process, which already has a name.
    set_process_name("worker", unless_set=True)


@worker_ready.connect
def _serve_health(**_):
    from diploi_site.health_server import start_from_settings
    from diploi_site.metrics import connect_task_signals

    connect_task_signals()
    start_from_settings()
