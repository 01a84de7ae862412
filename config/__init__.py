"""config: settings (read from the environment), the URLconf, the Celery app, WSGI/ASGI.

The top of the dependency graph: it may name every app; no app imports config (apps read
settings through django.conf.settings).
"""

from config.celery import app as celery_app

__all__ = ["celery_app"]
