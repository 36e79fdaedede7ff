// Tollgate console: the few things a server-rendered page cannot do.
"use strict";
document.addEventListener("click", async (ev) => {
  const t = ev.target;
  if (!(t instanceof HTMLElement)) return;
  // Reveal an API key's value on click (GetApiKey with includeValue).
  if (t.dataset.reveal) {
    const out = t.parentElement.querySelector(".value");
    const res = await fetch("/console/keys/" + encodeURIComponent(t.dataset.reveal) + "/value", {credentials: "same-origin"});
    const body = await res.json().catch(() => ({message: res.statusText}));
    out.textContent = res.ok ? body.value : body.message;
    out.classList.toggle("error", !res.ok);
    out.dataset.revealed = res.ok ? "value" : "error";
    t.hidden = res.ok;
    return;
  }
  // Open and close a dialog (the usage page's extension).
  if (t.dataset.dialog) {
    document.getElementById(t.dataset.dialog).showModal();
    return;
  }
  if (t.hasAttribute("data-close")) {
    t.closest("dialog").close();
  }
});
