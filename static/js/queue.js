// Labeling view keyboard flow: 1–9 pick a value of the active categorical question (then the
// next unanswered one becomes active), Enter submits, s skips, ← goes to the previous item.
// Keys typed into a text field stay there (Ctrl/⌘+Enter still submits from a text box).
(() => {
  "use strict";

  const form = () => document.getElementById("label-form");
  const groups = () => Array.from(form()?.querySelectorAll("[data-choice-group]") ?? []);
  let active = -1;

  function answered(group) {
    return group.querySelector("input[type=radio]:checked") !== null;
  }

  function setActive(index) {
    const all = groups();
    active = all.length ? Math.max(0, Math.min(index, all.length - 1)) : -1;
    all.forEach((group, i) => group.classList.toggle("active", i === active));
  }

  function nextUnanswered(after) {
    const all = groups();
    for (let i = after + 1; i < all.length; i++) if (!answered(all[i])) return i;
    return -1;
  }

  function pick(key) {
    const all = groups();
    if (active < 0 || active >= all.length) return false;
    const input = all[active].querySelector(`input[type=radio][data-key="${key}"]`);
    if (!input || input.disabled) return false;
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    const next = nextUnanswered(active);
    if (next >= 0) setActive(next);
    return true;
  }

  function press(id) {
    const button = document.getElementById(id);
    const target = form();
    if (!button || !target || button.disabled || button.closest("fieldset[disabled]")) return;
    target.requestSubmit(button);
  }

  function previous() {
    const link = document.getElementById("previous-link");
    if (link) window.location.assign(link.href);
  }

  function isTextField(element) {
    if (!element || !element.matches) return false;
    if (element.isContentEditable) return true;
    if (element.matches("textarea, select")) return true;
    return element.matches("input") && !element.matches("[type=radio], [type=checkbox], [type=button], [type=submit]");
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.altKey || event.isComposing) return;
    const target = event.target;
    if (event.key === "Enter") {
      if (target.matches?.("button, a, summary")) return; // their own activation
      if (target.matches?.("textarea") && !(event.ctrlKey || event.metaKey)) return;
      if (isTextField(target) && target.form !== form()) return;
      if (!form()) return;
      event.preventDefault();
      press("submit-button");
      return;
    }
    if (event.ctrlKey || event.metaKey || isTextField(target)) return;
    if (/^[1-9]$/.test(event.key)) {
      if (pick(event.key)) event.preventDefault();
    } else if (event.key === "s" || event.key === "S") {
      event.preventDefault();
      press("skip-button");
    } else if (event.key === "ArrowLeft") {
      event.preventDefault();
      previous();
    }
  });

  // Clicking or tabbing into a question makes it the active one.
  document.addEventListener("focusin", (event) => {
    const group = event.target.closest?.("[data-choice-group]");
    if (group) setActive(groups().indexOf(group));
  });
  document.addEventListener("click", (event) => {
    const group = event.target.closest?.("[data-choice-group]");
    if (group) setActive(groups().indexOf(group));
    // A trace's span tree: mark the span picked (its pane loads through htmx).
    const row = event.target.closest?.("#span-tree li.row");
    if (row) {
      for (const other of row.parentElement.querySelectorAll("li.row")) {
        other.classList.toggle("selected", other === row);
        other.setAttribute("aria-selected", other === row ? "true" : "false");
      }
    }
  });

  function start() {
    const all = groups();
    if (all.length) {
      const first = all.findIndex((group) => !answered(group));
      setActive(first >= 0 ? first : 0);
    }
    // The keys work from here on (tests and scripts wait for this mark, not for a delay).
    form()?.setAttribute("data-keys", "ready");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
