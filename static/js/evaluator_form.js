// The evaluator form: add and remove choice rows, show the selected check's parameters, and
// say when the JSON was changed (then it is saved instead of the fields).
(() => {
  function showCheck(form) {
    const check = form.querySelector('select[name="check"]');
    if (!check) return;
    form.querySelectorAll(".check-params").forEach((section) => {
      section.hidden = section.dataset.check !== check.value;
    });
  }

  function addChoice(form) {
    const template = form.querySelector("#choice-row-template");
    const body = form.querySelector("#choice-rows tbody");
    if (!template || !body) return;
    body.appendChild(template.content.cloneNode(true));
    body.lastElementChild.querySelector("input").focus();
  }

  function removeChoice(form, button) {
    const rows = form.querySelectorAll("#choice-rows .choice-row");
    const row = button.closest(".choice-row");
    if (rows.length > 1) {
      row.remove();
    } else {
      row.querySelectorAll("input").forEach((input) => (input.value = "")); // keep one row
    }
  }

  function markJson(form) {
    const json = form.querySelector('textarea[name="definition"]');
    const shown = form.querySelector('input[name="definition_shown"]');
    const notice = form.querySelector(".json-wins");
    if (json && shown && notice) notice.hidden = json.value.trim() === shown.value.trim();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("evaluator-form");
    if (!form) return;
    showCheck(form);
    markJson(form);
    form.addEventListener("change", (event) => {
      if (event.target.name === "check") showCheck(form);
    });
    form.addEventListener("input", (event) => {
      if (event.target.name === "definition") markJson(form);
    });
    form.addEventListener("click", (event) => {
      if (event.target.id === "add-choice") addChoice(form);
      if (event.target.classList.contains("remove-row")) removeChoice(form, event.target);
    });
  });
})();
