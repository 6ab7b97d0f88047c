// The playground's span picker: "Use" puts the span's id in the Span id field.
(() => {
  document.addEventListener("click", (event) => {
    const button = event.target.closest("#span-choices .use-span");
    if (!button) return;
    const input = document.getElementById("playground-span-id");
    if (!input) return;
    input.value = button.dataset.spanId;
    document.querySelectorAll("#span-choices tr.picker-span").forEach((row) => {
      row.classList.toggle("selected", row.dataset.spanId === input.value);
    });
  });
})();
