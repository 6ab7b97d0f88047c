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

// Forms that ask before doing something that cannot be undone: <form data-confirm="Delete …?">.
// (No inline onsubmit handlers: the Content-Security-Policy allows scripts from files only.)
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
