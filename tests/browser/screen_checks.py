"""What every screen must get right, read off the page as Chromium rendered it: it fits the window
(no sideways scrolling of the page itself), it is not Django's technical DEBUG page, and every amount
in it reads as money: grouped, the currency's own number of decimals, a currency beside it.

Shared by the admin and the portal sweeps: `screen_problems(page)` returns one line per problem
(an empty list: the screen passes).

How an amount is told from other numbers (ids, counts, dates, hashes):
- only the main content is read (`#content` in the admin, `main` in the portal), never code-like
  elements (`code`, `pre`, `kbd`, `samp`, `[data-raw]`: hashes, request ids, JSON);
- a number with 4 or more decimals is never money as shown to a person ("368.840000000000");
- 3 decimals are money only in a currency whose ISO exponent is 3 (KWD 1.250), named beside it;
- a number with 2 decimals is an amount: it must be grouped (1,234.50, not 1234.50) and have a
  currency symbol or ISO code in its element, its table row, or its column's header;
- integers are not checked (an amount in a 0-decimal currency needs its symbol, but so does a count,
  and nothing on the page tells them apart).
"""

import re
from dataclasses import dataclass

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, Response

from core.currencies import exponent, known_currencies

# Text nodes of the main content that contain a digit, each with what a reader sees around it.
_NUMBER_TEXTS_JS = """
(selectors) => {
  const root = selectors.map((s) => document.querySelector(s)).find((e) => e) || document.body;
  const codeLike = "code, pre, kbd, samp, script, style, textarea, template, [data-raw]";
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue.trim();
    const parent = node.parentElement;
    if (!/[0-9]/.test(text) || !parent || parent.closest(codeLike)) continue;
    const cell = parent.closest("td, th");
    let row = "", header = "";
    if (cell) {
      const tr = cell.parentElement;
      row = tr.innerText;
      const table = cell.closest("table");
      const head = table && table.tHead && table.tHead.rows[0];
      const index = Array.from(tr.children).indexOf(cell);
      if (head && head.cells[index]) header = head.cells[index].innerText;
    }
    const block = parent.closest("td, th, li, p, dd, dt, h1, h2, h3, h4, label, .readonly, div") || parent;
    found.push({text, context: block.innerText || text, row, header});
  }
  return found;
}
"""
# Django's technical pages (DEBUG on): the 500 traceback page and the 404 page listing the URLconf.
_DEBUG_MARKER = "seeing this error because you have <code>DEBUG = True</code>"
_DEBUG_SELECTORS = "#traceback, #summary .exception_value"

_MANY_DECIMALS = re.compile(r"(?<![\w.:])\d+\.\d{4,}")
_THREE_DECIMALS = re.compile(r"(?<![\w.:,])\d{1,3}(?:,\d{3})*\.\d{3}(?![\w.])|(?<![\w.:,])\d{4,}\.\d{3}(?![\w.])")
_TWO_DECIMALS = re.compile(r"(?<![\w.:,])(\d{1,3}(?:,\d{3})+|\d+)\.\d{2}(?![\w.%])")
_AXE = Axe()  # axe-core, as axe-playwright-python ships it (no download)
_BLOCKING_IMPACTS = ("serious", "critical")
_CURRENCY_SYMBOLS = re.compile(r"[$€£¥₹₩₽₺₪₫฿]")
_CODES = re.compile(r"\b[A-Z]{3}\b")


@dataclass(frozen=True)
class NumberText:
    text: str
    context: str
    row: str
    header: str


def _codes(*texts: str) -> set[str]:
    """ISO 4217 codes named in the texts (three capitals that are a currency)."""
    return {code for text in texts for code in _CODES.findall(text) if code in known_currencies()}


def _has_currency(*texts: str) -> bool:
    return any(_CURRENCY_SYMBOLS.search(text) for text in texts) or bool(_codes(*texts))


def amount_problems(found: list[NumberText]) -> list[str]:
    """The amounts among the page's numbers that are not shown as money (see the module docstring)."""
    problems = []
    for item in found:
        around = (item.context, item.row, item.header)
        for raw in _MANY_DECIMALS.findall(item.text):
            problems.append(f"raw number {raw!r} in {item.context[:80]!r}")
        for three in _THREE_DECIMALS.finditer(item.text):
            if not any(exponent(code) == 3 for code in _codes(*around)):
                problems.append(f"3 decimals without a 3-decimal currency {three.group()!r} in {item.context[:80]!r}")
        for two in _TWO_DECIMALS.finditer(item.text):
            whole = two.group(1)
            if len(whole) > 3 and "," not in whole:
                problems.append(f"amount not grouped {two.group()!r} in {item.context[:80]!r}")
            elif not _has_currency(*around):
                problems.append(f"amount without currency {two.group()!r} in {item.context[:80]!r}")
    return problems


# The outermost elements that reach past the window's right edge (their descendants are not named):
# where to look when the page is wider than the window.
_WIDEST_JS = """
() => {
  const limit = window.innerWidth;
  const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
    (typeof e.className === "string" && e.className.trim() ? "." + e.className.trim().split(/\\s+/).join(".") : "");
  const wide = [];
  for (const e of document.querySelectorAll("body *")) {
    if (e.getBoundingClientRect().right <= limit + 1) continue;
    if (wide.some((outer) => outer.contains(e))) continue;
    let boxed = false;  // inside a box that scrolls or clips sideways: the page itself does not widen
    for (let a = e.parentElement; a && a !== document.body && !boxed; a = a.parentElement) {
      boxed = ["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(a).overflowX);
    }
    if (!boxed) wide.push(e);
  }
  return wide.slice(0, 5).map((e) => `${name(e)} (${Math.round(e.getBoundingClientRect().right)} px)`);
}
"""


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the document is wider than the window (0: nothing scrolls sideways)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def widest_elements(page: Page) -> list[str]:
    """The outermost elements past the window's right edge, e.g. ['table#ledger-lines (751 px)']."""
    return list(page.evaluate(_WIDEST_JS))


def is_debug_page(page: Page) -> bool:
    html = page.content()
    return _DEBUG_MARKER in html or page.locator(_DEBUG_SELECTORS).count() > 0


def screen_problems(
    page: Page, response: Response | None, *, content: tuple[str, ...] = ("#content", "main")
) -> list[str]:
    """Every problem of the screen now shown: HTTP status, DEBUG page, overflow, amounts."""
    problems = []
    if response is None or response.status != 200:
        problems.append(f"HTTP {response.status if response else 'no response'}")
    if is_debug_page(page):
        problems.append("Django's technical DEBUG page")
    overflow = horizontal_overflow(page)
    if overflow > 0:
        problems.append(f"the page is {overflow} px wider than the window: {', '.join(widest_elements(page))}")
    found = [NumberText(**item) for item in page.evaluate(_NUMBER_TEXTS_JS, list(content))]
    problems.extend(amount_problems(found))
    return problems


def accessibility_problems(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page now shown, one line per rule, with
    the first offending element (0 lines: the page passes)."""
    violations = _AXE.run(page).response["violations"]
    return [
        f"axe {v['impact']}: {v['id']} ({v['help']}) x{len(v['nodes'])}, e.g. {v['nodes'][0]['target']}"
        for v in violations
        if v["impact"] in _BLOCKING_IMPACTS
    ]
