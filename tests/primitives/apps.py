from django.apps import AppConfig


class PrimitivesConfig(AppConfig):
    name = "tests.primitives"
    label = "primitives"
