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

// Layout from data attributes, set through the style property (which the
// Content-Security-Policy allows, unlike style="" attributes): bar widths
// (<span data-width="42.5">), span-tree indentation (<li data-depth="2">) and waterfall bars
// (<span data-bar="left:10%;width:20%">). Runs on each page and on all content htmx swaps in.
const BAR_PROPERTIES = new Set(["left", "width"]);

function percent(value) {
  const number = Number.parseFloat(value);
  return Number.isFinite(number) ? `${Math.min(Math.max(number, 0), 100)}%` : null;
}

function applyLayout(root) {
  if (!root.querySelectorAll) return;
  const within = (selector) => [
    ...(root.matches && root.matches(selector) ? [root] : []),
    ...root.querySelectorAll(selector),
  ];
  for (const element of within("[data-width]")) {
    const width = percent(element.dataset.width);
    if (width) element.style.width = width;
  }
  for (const element of within(".span-tree [data-depth]")) {
    const depth = Number.parseInt(element.dataset.depth, 10);
    if (Number.isFinite(depth)) element.style.setProperty("--depth", String(depth));
  }
  for (const element of within("[data-bar]")) {
    for (const declaration of element.dataset.bar.split(";")) {
      const [name, value] = declaration.split(":").map((part) => part.trim());
      const amount = percent(value);
      if (BAR_PROPERTIES.has(name) && amount) element.style.setProperty(name, amount);
    }
  }
}
document.addEventListener("DOMContentLoaded", () => applyLayout(document));
document.addEventListener("htmx:load", (event) => applyLayout(event.target));

// "Run #n is queued" messages (class run-queued) go once the run page shows the run has left
// the queued state: on load, and each time the polled status is swapped in.
function dropQueuedMessages() {
  const status = document.querySelector("#run-live [data-status]");
  if (!status || status.dataset.status === "queued") return;
  for (const message of document.querySelectorAll(".messages .message.run-queued")) message.remove();
  for (const list of document.querySelectorAll(".messages")) {
    if (!list.children.length) list.remove();
  }
}
document.addEventListener("DOMContentLoaded", dropQueuedMessages);
document.addEventListener("htmx:afterSettle", dropQueuedMessages);

// Time zones: the browser's zone goes to the server in a cookie (pages show times in it unless
// the person chose another in Settings → Preferences), and every <time datetime> element says
// its moment in UTC on hover.
(() => {
  try {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const current = document.cookie.split("; ").find((part) => part.startsWith("evalhub_tz="));
    if (zone && current !== `evalhub_tz=${zone}`) {
      document.cookie = `evalhub_tz=${zone}; path=/; max-age=31536000; SameSite=Lax`;
    }
  } catch (error) {
    // No Intl time zone support: pages stay in UTC.
  }
})();

function utcTitles(root) {
  if (!root.querySelectorAll) return;
  for (const element of root.querySelectorAll("time[datetime]:not([title])")) {
    const moment = new Date(element.getAttribute("datetime"));
    if (Number.isNaN(moment.getTime())) continue;
    element.title = `${moment.toISOString().slice(0, 19).replace("T", " ")} UTC`;
  }
}
document.addEventListener("DOMContentLoaded", () => utcTitles(document));
document.addEventListener("htmx:load", (event) => utcTitles(event.target));
