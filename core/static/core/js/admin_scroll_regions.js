/* A box that scrolls sideways must be reachable from the keyboard, so that someone without a mouse
   can scroll it (WCAG 2.1.1; axe-core: scrollable-region-focusable). Django's admin lets inline
   tables and changelist results scroll inside their box on a narrow screen, but a box that holds
   nothing focusable (a read-only inline) is then out of the tab order. Such a box gets tabindex=0
   while, and only while, its content is wider than it is. */
(function () {
  "use strict";
  var MARK = "data-scroll-focus";

  function scrollsSideways(box) {
    var overflow = window.getComputedStyle(box).overflowX;
    return (overflow === "auto" || overflow === "scroll") && box.scrollWidth > box.clientWidth;
  }

  function update() {
    document.querySelectorAll("#content div, #content fieldset").forEach(function (box) {
      if (scrollsSideways(box)) {
        if (!box.hasAttribute("tabindex")) {
          box.setAttribute("tabindex", "0");
          box.setAttribute(MARK, "");
        }
      } else if (box.hasAttribute(MARK)) {
        box.removeAttribute("tabindex");
        box.removeAttribute(MARK);
      }
    });
  }

  window.addEventListener("DOMContentLoaded", update);
  window.addEventListener("resize", update);
})();
