from django.apps import AppConfig


class PrimitivesConfig(AppConfig):
    name = "bench.primitives"
    label = "primitives"
