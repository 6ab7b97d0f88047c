// Settings → Annotation configs: "Add a value" adds an empty label row; a delete asks first.
(() => {
  "use strict";

  document.addEventListener("click", (event) => {
    const add = event.target.closest("[data-add-value]");
    if (!add) return;
    const rows = document.getElementById("value-rows");
    const last = rows?.querySelector("tr:last-child");
    if (!last) return;
    const row = last.cloneNode(true);
    const number = rows.querySelectorAll("tr").length + 1;
    for (const input of row.querySelectorAll("input")) {
      input.value = "";
      const what = input.name === "value_score" ? "Score" : "Label";
      input.setAttribute("aria-label", `${what} ${number}`);
    }
    rows.appendChild(row);
    row.querySelector("input")?.focus();
  });

  document.addEventListener("submit", (event) => {
    const question = event.target.dataset?.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
