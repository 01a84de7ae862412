"""Test settings: the project's settings plus a tiny app whose model exercises the primitives
(bench.primitives: the tests and the benchmarks both use it, and bench never imports tests).

The suite runs against the local stand-ins with the sandbox credentials this repository publishes, so
the project's settings load in demo mode (DJANGO_DEBUG on: no start-up refusal, plain HTTP, no HSTS);
then DEBUG goes off as in production, and the admin asks for its second factor as in production.
Child processes started with this environment (tests that run `django.setup()` in a subprocess) load
the same way. tests/config/test_settings.py proves the production refusals in fresh processes.
"""

import os

os.environ["DJANGO_DEBUG"] = "true"

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

DEBUG = False
ALLOW_PUBLISHED_DEFAULTS = True  # the stand-ins' sandbox credentials; tests of the refusal switch it off
ADMIN_REQUIRE_OTP = True  # tests/conftest.py passes the second factor for force_login'd staff

INSTALLED_APPS = [*INSTALLED_APPS, "bench.primitives"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_TASK_EAGER_PROPAGATES = True
