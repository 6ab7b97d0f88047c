// Small page helpers shared by every page. Page-specific behaviour lives beside its template.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  navigator.clipboard.writeText(source.innerText).then(() => {
    const previous = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = previous), 1200);
  });
});
