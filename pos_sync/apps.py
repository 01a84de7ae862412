from django.apps import AppConfig


class PosSyncConfig(AppConfig):
    name = "pos_sync"
