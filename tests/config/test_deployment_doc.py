"""docs/DEPLOYMENT.md lists every environment variable the settings read, so an operator setting up
a host finds each one there: a variable added to config/settings.py without a line in the guide
fails here."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READERS = {"str", "bool", "int", "float", "list", "db", "email_url"}  # django-environ's, as settings calls them
WRAPPERS = {"_credential"}  # settings' own reader of a secret


def variables_the_settings_read() -> set[str]:
    tree = ast.parse((ROOT / "config" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Constant):
            continue
        func = node.func
        by_env = isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "env"
        if (by_env and func.attr in READERS) or (isinstance(func, ast.Name) and func.id in WRAPPERS):  # type: ignore[union-attr]
            names.add(str(node.args[0].value))
    return names


def test_the_settings_read_the_variables_this_test_looks_for() -> None:
    found = variables_the_settings_read()
    assert {"DATABASE_URL", "DATABASE_POOL_MODE", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY"} <= found
    assert len(found) > 40


def test_every_variable_the_settings_read_is_in_the_deployment_guide() -> None:
    guide = (ROOT / "docs" / "DEPLOYMENT.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", guide))

    assert sorted(variables_the_settings_read() - documented) == []
