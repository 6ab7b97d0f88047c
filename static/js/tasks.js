// The task form: backfill fields shown only when a backfill is asked for, and the quiet period
// (for traces and sessions only) with its default as the placeholder.
(() => {
  const QUIET_DEFAULTS = { trace: "60 (1 minute)", session: "600 (10 minutes)" };

  function refresh(form) {
    const backfill = form.querySelector('input[name="backfill"]');
    const fields = form.querySelector("[data-backfill-fields]");
    if (backfill && fields) fields.hidden = !backfill.checked;
    const granularity = form.querySelector('input[name="granularity"]:checked');
    const quiet = form.querySelector('input[name="quiet_seconds"]');
    if (granularity && quiet) {
      const usesQuiet = granularity.value in QUIET_DEFAULTS;
      quiet.disabled = !usesQuiet;
      quiet.placeholder = usesQuiet ? `default: ${QUIET_DEFAULTS[granularity.value]}` : "spans: none";
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("task-form");
    if (!form) return;
    refresh(form);
    form.addEventListener("change", (event) => {
      if (["backfill", "granularity"].includes(event.target.name)) refresh(form);
    });
  });
})();
