"""Settings for the benchmark's own gunicorn only (``manage.py bench_members``).

The settings module the bench command runs under (``BENCH_BASE_SETTINGS``, e.g.
``tests.settings`` as in ``make bench``) with one change: the URLconf adds the
no-database baseline endpoint (``members.management.bench_urls``). Nothing in the
product points here; a deployment never selects this module.
"""

import importlib
import os

_base = importlib.import_module(os.environ["BENCH_BASE_SETTINGS"])
globals().update({name: value for name, value in vars(_base).items() if name.isupper()})

ROOT_URLCONF = "members.management.bench_urls"
