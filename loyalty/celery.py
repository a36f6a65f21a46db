"""The Celery application. Tasks are discovered in every installed app's ``tasks.py``
(and in the loyalty app's ``ledger/`` and ``adjustments/`` parts).

Without ``REDIS_URL`` the settings make tasks run in-process (``task_always_eager``), so
a first run needs no broker; with it, ``make worker`` runs a worker and the beat
scheduler, whose schedules live in the database (django-celery-beat).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")

app = Celery("loyalty", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The ledger's and the adjustments' jobs live in their parts of the loyalty app (registered
# under their historical names, loyalty.tasks.*, which the database schedules use).
app.autodiscover_tasks(["loyalty.ledger", "loyalty.adjustments"])

# Every run of every task ends as a row of the job log (loyalty.kernel.models.JobRun),
# eager runs included: the system administrator's landing page shows them.
from loyalty.kernel.jobs import job_log_connect  # noqa: E402

job_log_connect()
