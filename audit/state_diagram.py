"""A model's django-fsm state machine drawn as inline SVG, from its `@transition` declarations.

Server-side and dependency-free (no Graphviz, no JavaScript, nothing fetched): the states are laid
out in columns by their distance from the initial state (the field's default), one transition is an
arrow, and the current state and the moves it allows are emphasised. Every piece of text comes from
declarations and goes through format_html, so a state or transition name can never inject markup.
"""

from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from django.db import models
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import capfirst
from django_fsm import ANY_OTHER_STATE, ANY_STATE, FSMFieldMixin

from audit.transitions import available_transitions

FONT = 13  # px, state names
LABEL_FONT = 12  # px, transition names
CHAR = 0.62  # a character's width as a share of the font size (generous for sans-serif)
BOX_H, ROW, PAD, MARGIN = 34, 60, 14, 16
LANE = 24  # vertical pitch of the lanes under the states that carry the backward arrows
START = 26  # room left of the first column for the initial-state dot
INK, MUTED, ACCENT, CURRENT = "#333333", "#8a8a8a", "#1b6e35", "#264b5d"


@dataclass(frozen=True)
class Move:
    """One drawn arrow: every declared transition from `source` to `target`, by name."""

    source: str
    target: str
    names: tuple[str, ...]

    @property
    def label(self) -> str:
        return " / ".join(humanise(name) for name in self.names)


@dataclass(frozen=True)
class StateMachine:
    """A state field's states (in the choices' order), their labels, its initial state and its moves."""

    states: tuple[str, ...]
    labels: dict[str, str]
    initial: str
    moves: tuple[Move, ...]

    def moves_from(self, state: str) -> list[Move]:
        return [move for move in self.moves if move.source == state]


def humanise(transition_name: str) -> str:
    """'mark_paid_after_failure' -> 'mark paid after failure'."""
    return transition_name.replace("_", " ")


def state_field(model: type[models.Model], field_name: str | None = None) -> FSMFieldMixin:
    """The model's django-fsm field `field_name`, or its only one when no name is given."""
    fields = [f for f in model._meta.concrete_fields if isinstance(f, FSMFieldMixin)]
    found = [f for f in fields if field_name is None or f.name == field_name]
    if len(found) != 1:
        raise ValueError(f"{model._meta.label} has no single django-fsm field named {field_name or '(any)'}.")
    return found[0]


def state_machine(model: type[models.Model], field_name: str | None = None) -> StateMachine:
    """The declarations of `model`'s state field, with the wildcard sources ('*', '+') spelled out."""
    field = state_field(model, field_name)
    labels = {str(value): str(label) for value, label in field.flatchoices}
    declared = [(str(t.source), str(t.target), t.name) for t in field.get_all_transitions(model)]
    states = list(labels)
    for source, target, _name in declared:
        states += [s for s in (source, target) if s not in states and s not in (ANY_STATE, ANY_OTHER_STATE)]
    names: dict[tuple[str, str], list[str]] = {}
    for source, target, name in declared:
        for concrete in _sources(source, target, states):
            names.setdefault((concrete, target), []).append(name)
    initial = str(field.get_default()) if field.has_default() else states[0]
    return StateMachine(
        states=tuple(states),
        labels={state: labels.get(state) or capfirst(state) for state in states},
        initial=initial if initial in states else states[0],
        moves=tuple(Move(source, target, tuple(sorted(set(n)))) for (source, target), n in names.items()),
    )


def _sources(source: str, target: str, states: list[str]) -> list[str]:
    if source == ANY_STATE:
        return list(states)
    if source == ANY_OTHER_STATE:
        return [s for s in states if s != target]
    return [source]


def state_diagram_svg(
    model: type[models.Model],
    field_name: str | None = None,
    *,
    current: str | None = None,
    next_moves: Collection[str] | None = None,
) -> SafeString:
    """The SVG of `model`'s state field (`field_name`, or its only FSM field).

    current: the state to highlight. next_moves: the transition names to emphasise among those
    leaving `current`; None emphasises every move declared from it (the page may narrow them to
    the ones whose conditions hold now).
    """
    machine = state_machine(model, field_name)
    leaving = machine.moves_from(current) if current is not None else []
    emphasised = [m for m in leaving if next_moves is None or set(m.names) & set(next_moves)]
    layout = _Layout(machine)
    prefix = f"fsm-{model._meta.label_lower.replace('.', '-')}-{state_field(model, field_name).name}"
    title = f"Status diagram of {model._meta.verbose_name}"
    body = [
        _defs(prefix),
        _start_marker(layout, prefix),
        *(_arrow(layout, move, move in emphasised, prefix) for move in machine.moves),
        *(_state_box(layout, state, current, {m.target for m in emphasised}) for state in machine.states),
    ]
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="state-diagram" role="img" width="{}" height="{}" '
        'viewBox="0 0 {} {}" aria-labelledby="{}-title {}-desc" style="max-width:100%;height:auto">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
        layout.width,
        layout.height,
        layout.width,
        layout.height,
        prefix,
        prefix,
        prefix,
        title,
        prefix,
        describe(machine, current, emphasised),
        format_html_join("", "{}", ((part,) for part in body)),
    )


def state_diagram_figure(instance: models.Model) -> SafeString:
    """The diagram of `instance`'s state field in a <figure>, its current state highlighted and the
    moves whose conditions hold now emphasised; the caption says the same in words."""
    model = type(instance)
    current = str(state_field(model).value_from_object(instance))
    possible = {option.name for option in available_transitions(instance)}
    machine = state_machine(model)
    leaving = machine.moves_from(current)
    return format_html(
        '<figure class="state-diagram" style="margin:0;max-width:100%;overflow-x:auto">{}'
        '<figcaption style="padding:4px 0;font-size:13px">{}</figcaption></figure>',
        state_diagram_svg(model, current=current, next_moves=possible),
        describe(machine, current, [m for m in leaving if set(m.names) & possible]),
    )


def describe(machine: StateMachine, current: str | None, emphasised: Collection[Move]) -> str:
    """The diagram in words, for screen readers and as the figure's caption."""
    text = f"Starts as {machine.labels[machine.initial]}."
    if current is None:
        return text
    waiting = [m for m in machine.moves_from(current) if m not in emphasised]
    text += f" Now: {machine.labels.get(current, current)}."
    if emphasised:
        text += f" Possible next: {_moves_text(machine, emphasised)}."
    if waiting:
        text += f" Not possible now (a condition is not met): {_moves_text(machine, waiting)}."
    if not emphasised and not waiting:
        text += " This is a final state: no further move."
    return text


def _moves_text(machine: StateMachine, moves: Iterable[Move]) -> str:
    return "; ".join(f"{capfirst(m.label)} (to {machine.labels[m.target]})" for m in moves)


class _Layout:
    """Columns by distance from the initial state (unreachable states last); each column centred
    vertically; arrows to a later column are straight, within a column they arc on the right, and
    back to an earlier column they run in a lane of their own under all the states."""

    def __init__(self, machine: StateMachine) -> None:
        self.machine = machine
        depth = _distances(machine)
        self.columns: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
        backward = {s for m in machine.moves if depth[m.target] < depth[m.source] for s in (m.source, m.target)}
        # States with a backward arrow go to the bottom of their column: the arrow drops straight
        # into its lane instead of crossing the boxes under it.
        for state in sorted(machine.states, key=lambda s: (s in backward, machine.states.index(s))):
            self.columns[depth[state]].append(state)
        self.depth = depth
        self.box_w = max(_text_width(label, FONT) for label in machine.labels.values()) + 2 * PAD
        self.rows = max(len(column) for column in self.columns)
        self.top = MARGIN
        self._place_columns()
        self.backward = [m for m in machine.moves if depth[m.target] < depth[m.source]]
        self.lanes_top = self.top + self.rows * ROW - (ROW - BOX_H) + 18
        self.height = self.lanes_top + len(self.backward) * LANE + MARGIN

    def _place_columns(self) -> None:
        moves = self.machine.moves
        self.x: list[int] = [MARGIN + START]
        self.arc_room: list[int] = []
        for index, _column in enumerate(self.columns):
            loops = [m for m in moves if m.source == m.target and self.depth[m.source] == index]
            arcs = self.arcs(index)
            forward = [m for m in moves if self.depth[m.source] == index and self.depth[m.target] == index + 1]
            arc_room = max(
                [30 + 10 * i + _text_width(m.label, LABEL_FONT) + 8 for i, m in enumerate(arcs)]
                + [24 + _text_width(m.label, LABEL_FONT) + 8 for m in loops],
                default=0,
            )
            gap = max((_text_width(m.label, LABEL_FONT) + 32 for m in forward), default=0)
            self.arc_room.append(arc_room)
            self.x.append(self.x[-1] + self.box_w + arc_room + max(gap, 90))
        # self.x has one entry past the last column; the drawing ends at that column's arcs.
        self.width = self.x[-2] + self.box_w + self.arc_room[-1] + MARGIN

    def arcs(self, column: int) -> list[Move]:
        """The moves between two states of one column, in the order their arcs bulge outwards."""
        return [
            m
            for m in self.machine.moves
            if m.source != m.target and self.depth[m.source] == self.depth[m.target] == column
        ]

    def box(self, state: str) -> tuple[int, int]:
        """The top-left corner of `state`'s box."""
        index = self.depth[state]
        column = self.columns[index]
        offset = (self.rows - len(column)) * ROW // 2
        return self.x[index], self.top + offset + column.index(state) * ROW


def _distances(machine: StateMachine) -> dict[str, int]:
    depth = {machine.initial: 0}
    queue = deque([machine.initial])
    while queue:
        state = queue.popleft()
        for move in machine.moves_from(state):
            if move.target not in depth:
                depth[move.target] = depth[state] + 1
                queue.append(move.target)
    last = max(depth.values()) + 1
    return {state: depth.get(state, last) for state in machine.states}


def _text_width(text: str, size: int) -> int:
    return round(len(text) * size * CHAR)


def _defs(prefix: str) -> SafeString:
    marker = (
        '<marker id="{}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" markerHeight="9" '
        'markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{}"/></marker>'
    )
    return format_html(
        "<defs>{}{}</defs>",
        format_html(marker, f"{prefix}-arrow", MUTED),
        format_html(marker, f"{prefix}-next", ACCENT),
    )


def _start_marker(layout: _Layout, prefix: str) -> SafeString:
    """UML's filled dot with an arrow into the initial state."""
    x, y = layout.box(layout.machine.initial)
    cy = y + BOX_H // 2
    return format_html(
        '<g class="initial"><circle cx="{}" cy="{}" r="6" fill="{}"/>'
        '<path d="M{},{} L{},{}" stroke="{}" stroke-width="1.5" marker-end="url(#{}-arrow)"/></g>',
        MARGIN + 6,
        cy,
        INK,
        MARGIN + 12,
        cy,
        x - 2,
        cy,
        INK,
        prefix,
    )


def _state_box(layout: _Layout, state: str, current: str | None, next_targets: set[str]) -> SafeString:
    x, y = layout.box(state)
    is_current, is_next = state == current, state in next_targets and state != current
    fill, stroke, ink = (CURRENT, CURRENT, "#ffffff") if is_current else ("#f8f8f8", MUTED, INK)
    if is_next:
        fill, stroke = "#ffffff", ACCENT
    classes = "state" + (" current" if is_current else "") + (" next" if is_next else "")
    return format_html(
        '<g class="{}" data-state="{}"{}><title>{}</title>'
        '<rect x="{}" y="{}" width="{}" height="{}" rx="6" fill="{}" stroke="{}" stroke-width="{}"{}/>'
        '<text x="{}" y="{}" text-anchor="middle" dominant-baseline="central" font-family="system-ui, sans-serif" '
        'font-size="{}" font-weight="{}" fill="{}">{}</text></g>',
        classes,
        state,
        mark_safe(' aria-current="true"') if is_current else "",
        f"{layout.machine.labels[state]} (current state)" if is_current else layout.machine.labels[state],
        x,
        y,
        layout.box_w,
        BOX_H,
        fill,
        stroke,
        3 if is_current or is_next else 1,
        mark_safe(' stroke-dasharray="5 3"') if is_next else "",
        x + layout.box_w // 2,
        y + BOX_H // 2,
        FONT,
        "bold" if is_current or is_next else "normal",
        ink,
        escape(layout.machine.labels[state]),
    )


def _arrow(layout: _Layout, move: Move, emphasised: bool, prefix: str) -> SafeString:
    path, (lx, ly), anchor = _route(layout, move)
    colour = ACCENT if emphasised else MUTED
    return format_html(
        '<g class="transition{}" data-source="{}" data-target="{}" data-names="{}">'
        '<path d="{}" fill="none" stroke="{}" stroke-width="{}" marker-end="url(#{}-{})"/>'
        '<text x="{}" y="{}" text-anchor="{}" font-family="system-ui, sans-serif" font-size="{}" font-weight="{}" '
        'fill="{}" stroke="#ffffff" stroke-width="4" paint-order="stroke">{}</text></g>',
        " next" if emphasised else "",
        move.source,
        move.target,
        " ".join(move.names),
        path,
        colour,
        2.5 if emphasised else 1.2,
        prefix,
        "next" if emphasised else "arrow",
        lx,
        ly,
        anchor,
        LABEL_FONT,
        "bold" if emphasised else "normal",
        colour if emphasised else INK,
        move.label,
    )


def _route(layout: _Layout, move: Move) -> tuple[str, tuple[int, int], str]:
    """The arrow's SVG path, where its label goes and how the label is anchored."""
    (sx, sy), (tx, ty) = layout.box(move.source), layout.box(move.target)
    half, w = BOX_H // 2, layout.box_w
    source_col, target_col = layout.depth[move.source], layout.depth[move.target]
    if move.source == move.target:
        x = sx + w
        path = f"M{x},{sy + 8} C{x + 26},{sy - 4} {x + 26},{sy + BOX_H + 4} {x + 2},{sy + BOX_H - 8}"
        return path, (x + 24, sy + half + 4), "start"
    if target_col > source_col:
        x1, y1, x2, y2 = sx + w, sy + half, tx - 2, ty + half
        # The label sits on the stretch after the source column's arcs, where nothing else is written.
        start = x1 + layout.arc_room[source_col]
        t = (start + (x2 - start) / 2 - x1) / max(x2 - x1, 1)
        return f"M{x1},{y1} L{x2},{y2}", (round(start + (x2 - start) / 2), round(y1 + (y2 - y1) * t) - 5), "middle"
    if target_col == source_col:
        bulge = 30 + 10 * layout.arcs(source_col).index(move)
        x = sx + w
        path = f"M{x},{sy + half} C{x + bulge},{sy + half} {x + bulge},{ty + half} {x + 2},{ty + half}"
        return path, (x + round(bulge * 0.75) + 6, (sy + ty) // 2 + half + 4), "start"
    lane = layout.lanes_top + layout.backward.index(move) * LANE
    into = [m for m in layout.backward if m.target == move.target]
    x1 = sx + w // 2
    x2 = tx + w // 2 + round((into.index(move) - (len(into) - 1) / 2) * 14)
    path = f"M{x1},{sy + BOX_H} L{x1},{lane} L{x2},{lane} L{x2},{ty + BOX_H + 2}"
    return path, ((x1 + x2) // 2, lane - 5), "middle"
