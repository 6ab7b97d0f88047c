// Trace page: the span tree. Up/down (or k/j) move between visible spans and load the span's
// pane through the row's htmx link; left/right collapse/expand (or go to the parent / first
// child); the twisty and the "Expand all / Collapse all" buttons do the same with the mouse.
(() => {
  "use strict";

  const tree = () => document.getElementById("span-tree");
  const rows = () => Array.from(tree()?.querySelectorAll(":scope > li.row") ?? []);
  const depthOf = (row) => Number(row.dataset.depth || 0);
  const isVisible = (row) => !row.classList.contains("hidden");
  const hasChildren = (row) => row.hasAttribute("aria-expanded");
  const isExpanded = (row) => row.getAttribute("aria-expanded") !== "false";

  function markSelected(spanId) {
    for (const row of rows()) {
      const on = row.dataset.spanId === spanId;
      row.classList.toggle("selected", on);
      row.setAttribute("aria-selected", on ? "true" : "false");
    }
  }

  function select(row) {
    if (!row) return;
    const link = row.querySelector("a.span-link");
    markSelected(row.dataset.spanId);
    row.scrollIntoView({ block: "nearest" });
    if (link) {
      link.focus({ preventScroll: true });
      link.click(); // htmx: GET the pane, swap it in, push the span's URL
    }
  }

  // Re-apply visibility below `row` from the expanded state of every row under it.
  function refreshBelow(row) {
    const all = rows();
    const start = all.indexOf(row);
    const base = depthOf(row);
    let hideDeeperThan = isExpanded(row) ? Infinity : base;
    for (let i = start + 1; i < all.length; i++) {
      const current = all[i];
      const depth = depthOf(current);
      if (depth <= base) break;
      if (depth <= hideDeeperThan) hideDeeperThan = Infinity;
      const hidden = depth > hideDeeperThan;
      current.classList.toggle("hidden", hidden);
      if (!hidden && hasChildren(current) && !isExpanded(current)) hideDeeperThan = depth;
    }
  }

  function setExpanded(row, expanded) {
    if (!row || !hasChildren(row) || isExpanded(row) === expanded) return;
    row.setAttribute("aria-expanded", expanded ? "true" : "false");
    refreshBelow(row);
  }

  function setAll(expanded) {
    for (const row of rows()) {
      if (hasChildren(row)) row.setAttribute("aria-expanded", expanded ? "true" : "false");
      row.classList.toggle("hidden", !expanded && depthOf(row) > 0);
    }
    const selected = currentRow();
    if (selected && !isVisible(selected)) select(rows().find(isVisible));
  }

  function currentRow() {
    return tree()?.querySelector(":scope > li.row.selected") ?? null;
  }

  function parentOf(row) {
    const all = rows();
    const depth = depthOf(row);
    for (let i = all.indexOf(row) - 1; i >= 0; i--) {
      if (depthOf(all[i]) < depth) return all[i];
    }
    return null;
  }

  function step(offset) {
    const visible = rows().filter(isVisible);
    if (!visible.length) return;
    const current = currentRow();
    let index = current ? visible.indexOf(current) : -1;
    index = index < 0 ? 0 : Math.min(Math.max(index + offset, 0), visible.length - 1);
    if (visible[index] !== current) select(visible[index]);
  }

  document.addEventListener("click", (event) => {
    const container = tree();
    if (!container) return;
    const action = event.target.closest("[data-tree-action]");
    if (action) {
      setAll(action.dataset.treeAction === "expand");
      return;
    }
    const row = event.target.closest("#span-tree > li.row");
    if (!row) return;
    if (event.target.closest("button.twisty")) {
      setExpanded(row, !isExpanded(row));
      return;
    }
    if (event.target.closest("a.span-link")) {
      if (event.ctrlKey || event.metaKey || event.shiftKey) return; // open in a new tab
      markSelected(row.dataset.spanId);
      return;
    }
    select(row); // a click anywhere else on the row
  });

  document.addEventListener("keydown", (event) => {
    if (!tree() || event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable], .pane-panel")) return;
    const current = currentRow();
    switch (event.key) {
      case "ArrowDown":
      case "j":
        step(1);
        break;
      case "ArrowUp":
      case "k":
        step(-1);
        break;
      case "ArrowLeft":
        if (!current) return;
        if (hasChildren(current) && isExpanded(current)) setExpanded(current, false);
        else select(parentOf(current));
        break;
      case "ArrowRight":
        if (!current || !hasChildren(current)) return;
        if (!isExpanded(current)) setExpanded(current, true);
        else step(1);
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  // Whatever swapped the pane in (a click, a key, a restored history entry), the tree follows.
  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target?.id !== "span-pane") return;
    const pane = event.detail.target.querySelector("[data-span-id]");
    if (pane) markSelected(pane.dataset.spanId);
  });

  // A pane that cannot be loaded says so (htmx does not swap error responses by itself).
  function paneFailed(event) {
    const target = event.detail.target;
    if (target?.id !== "span-pane") return;
    const status = event.detail.xhr?.status;
    const message = document.createElement("p");
    message.className = "pane-error";
    message.setAttribute("role", "alert");
    message.textContent =
      status === 404
        ? "This span is no longer there."
        : `Could not load this span${status ? ` (HTTP ${status})` : ""}. Try again.`;
    target.replaceChildren(message);
  }
  document.addEventListener("htmx:responseError", paneFailed);
  document.addEventListener("htmx:sendError", paneFailed);

  function init() {
    const selected = currentRow();
    if (selected) selected.scrollIntoView({ block: "nearest" });
    // A run's item links here with ?result=<evaluator>: show that result.
    const highlighted = document.getElementById("highlighted-result");
    if (highlighted) highlighted.scrollIntoView({ block: "center" });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
