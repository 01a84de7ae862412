"""Summary lines a suite prints as it goes and again under its own heading at the end of the run:
pytest shows the terminal summary on success too, so the figures land in CI output either way."""

import itertools

import pytest


class SummarySection:
    def __init__(self, title: str) -> None:
        self.title = title
        self._lines: dict[int, str] = {}
        self._next = itertools.count()

    def add(self, line: str, *, key: int | None = None) -> None:
        """Print the line now (shown with -s) and keep it for the end. Lines are written in `key`
        order (default: the order they were added); a line added again under its key replaces it."""
        print(line, flush=True)
        self._lines[next(self._next) if key is None else key] = line

    def write(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self._lines:
            terminalreporter.section(self.title)
            for _key, line in sorted(self._lines.items()):
                terminalreporter.write_line(line)
