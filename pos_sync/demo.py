from typing import TextIO


def seed(*, stdout: TextIO) -> None:
    """Demo rows for this app (filled in with the app's models)."""
