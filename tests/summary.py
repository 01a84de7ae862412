"""Summary lines a suite prints as it goes and again under its own heading at the end of the run:
pytest shows the terminal summary on success too, so the figures land in CI output either way.

Under pytest-xdist the lines are added in the worker processes while the terminal summary is written
by the controller: each worker hands its sections over when it finishes (`worker_output`, through
xdist's workeroutput) and the controller merges them (`merge_worker_output`). tests/conftest.py holds
the hooks, so one place writes every section whether the run is serial or parallel."""

import itertools

import pytest

_SECTIONS: dict[str, "SummarySection"] = {}  # by title: the sections this process knows
WORKER_OUTPUT_KEY = "tests.summary"


class SummarySection:
    def __init__(self, title: str) -> None:
        self.title = title
        self._keyed: dict[int, str] = {}
        self._unkeyed: dict[int, str] = {}
        self._next = itertools.count()
        _SECTIONS.setdefault(title, self)

    def add(self, line: str, *, key: int | None = None) -> None:
        """Print the line now (shown with -s) and keep it for the end. Keyed lines come first, in
        `key` order (a line added again under its key replaces it), then the others in the order
        they were added."""
        print(line, flush=True)
        section = _SECTIONS.setdefault(self.title, self)  # the one instance per title (merges land there)
        if key is None:
            section._unkeyed[next(section._next)] = line
        else:
            section._keyed[key] = line

    def lines(self) -> list[str]:
        return [line for _key, line in sorted(self._keyed.items())] + list(self._unkeyed.values())

    def write(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self._keyed or self._unkeyed:
            terminalreporter.section(self.title)
            for line in self.lines():
                terminalreporter.write_line(line)


def write_all(terminalreporter: pytest.TerminalReporter) -> None:
    """Every section with lines, in title order (the same order serial and parallel)."""
    for _title, section in sorted(_SECTIONS.items()):
        section.write(terminalreporter)


def worker_output() -> dict[str, list[tuple[int | None, str]]]:
    """This worker's lines, as plain data xdist can send to the controller."""
    return {
        title: [*section._keyed.items(), *((None, line) for line in section._unkeyed.values())]
        for title, section in _SECTIONS.items()
    }


def merge_worker_output(output: dict[str, list[tuple[int | None, str]]]) -> None:
    """Add a finished worker's lines to this (the controller's) sections, without printing them again."""
    for title, lines in output.items():
        section = _SECTIONS.get(title) or SummarySection(title)
        for key, line in lines:
            if key is None:
                section._unkeyed[next(section._next)] = line
            else:
                section._keyed[key] = line
