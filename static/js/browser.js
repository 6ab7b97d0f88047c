// Trace browser: row selection, custom time ranges, clean URLs, and live rows.
(() => {
  // Filter forms push their URL; leave empty fields out so shared links stay short.
  document.addEventListener("htmx:configRequest", (event) => {
    const form = event.detail.elt.closest && event.detail.elt.closest("#filters, #range");
    const data = event.detail.formData;
    if (!form || !data) return;
    for (const key of Array.from(new Set(data.keys()))) {
      if (data.getAll(key).every((value) => value === "")) data.delete(key);
    }
    // The zone (tz) matters only to a custom range's start and end: keep it only with them.
    if (!data.has("start") && !data.has("end")) data.delete("tz");
  });

  // Custom start/end fields are shown only for the "Custom" time range.
  document.addEventListener("change", (event) => {
    if (event.target.name !== "range") return;
    const form = event.target.form;
    if (!form) return;
    for (const field of form.querySelectorAll(".custom-range")) {
      field.hidden = event.target.value !== "custom";
    }
  });

  // An open dropdown (the span kind choices) closes on a click elsewhere.
  document.addEventListener("click", (event) => {
    for (const open of document.querySelectorAll("details.dropdown[open]")) {
      if (!open.contains(event.target)) open.open = false;
    }
  });

  // Menus (<details class="dropdown">): Escape closes the open one and gives its button the
  // focus back; opening a bulk menu closes the other.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    const open = event.target.closest && event.target.closest("details.dropdown[open]");
    if (!open) return;
    open.open = false;
    open.querySelector("summary")?.focus();
  });
  document.addEventListener(
    "toggle",
    (event) => {
      const menu = event.target;
      if (!menu.matches || !menu.matches("details[data-bulk-menu]") || !menu.open) return;
      for (const other of document.querySelectorAll("details[data-bulk-menu][open]")) {
        if (other !== menu) other.open = false;
      }
    },
    true,
  );

  // Row selection: a select-all box, a count, and bulk buttons enabled only with a selection.
  function refreshSelection(form) {
    if (!form) return;
    const boxes = form.querySelectorAll('input[name="selected"]');
    const checked = form.querySelectorAll('input[name="selected"]:checked');
    const count = form.querySelector("[data-selection-count]");
    if (count) count.textContent = `${checked.length} selected`;
    for (const button of form.querySelectorAll("[data-needs-selection]")) {
      button.disabled = checked.length === 0;
    }
    const all = form.querySelector("[data-select-all]");
    if (all) {
      all.checked = boxes.length > 0 && checked.length === boxes.length;
      all.indeterminate = checked.length > 0 && checked.length < boxes.length;
    }
    for (const box of boxes) box.closest("tr")?.classList.toggle("selected", box.checked);
  }

  document.addEventListener("change", (event) => {
    const target = event.target;
    if (target.matches("[data-select-all]")) {
      for (const box of target.form.querySelectorAll('input[name="selected"]')) {
        box.checked = target.checked;
      }
    }
    if (target.matches('[data-select-all], input[name="selected"]')) refreshSelection(target.form);
  });

  document.addEventListener("htmx:afterSettle", () => refreshSelection(document.getElementById("bulk")));

  // Live: rows added above the table are marked briefly; selection and scroll stay untouched.
  document.addEventListener("htmx:oobBeforeSwap", (event) => {
    if (event.detail.target.id !== "rows") return;
    for (const row of event.detail.fragment.querySelectorAll("tr")) row.classList.add("live-new");
  });
  document.addEventListener("htmx:oobAfterSwap", (event) => {
    if (event.detail.target.id === "rows") refreshSelection(document.getElementById("bulk"));
  });
})();
