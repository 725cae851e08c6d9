// Small behaviours htmx does not cover. No framework, no CDN, no inline handlers: the
// Content-Security-Policy allows scripts from our own origin only.

// <select data-autosubmit>: submit its form on change (the team switcher).
document.addEventListener("change", (event) => {
  const field = event.target.closest("[data-autosubmit]");
  if (field && field.form) field.form.requestSubmit();
});

// <button data-remove-closest=".selector">: remove that ancestor (closing the describe output).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-remove-closest]");
  if (!button) return;
  const target = button.closest(button.dataset.removeClosest);
  if (target) target.remove();
});

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = source.textContent.trim();
  const done = () => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text, done));
  } else {
    fallbackCopy(text, done);
  }
});

function fallbackCopy(text, done) {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "absolute";
  area.style.left = "-9999px";
  document.body.appendChild(area);
  area.select();
  try { document.execCommand("copy"); done(); } finally { area.remove(); }
}

// Show the server's message when an htmx request fails, instead of silence.
document.addEventListener("htmx:responseError", (event) => {
  const xhr = event.detail.xhr;
  const target = document.getElementById("action-feedback");
  const text = xhr.responseText && xhr.responseText.length < 500 ? xhr.responseText : `Request failed (${xhr.status}).`;
  if (target) { target.textContent = text; target.hidden = false; }
});

// Live fragments replace the status tree: keep what the user opened or closed, and where the page
// was scrolled. The server renders problem nodes open; once the user toggles a node, their choice wins.
const userOpen = new Map();
document.addEventListener("click", (event) => {
  const summary = event.target.closest("details[data-node] > summary");
  if (!summary) return;
  const details = summary.parentElement;
  userOpen.set(details.dataset.node, !details.open); // the click is about to flip it
});

let scrollBeforeSwap = null;
function rememberScroll() {
  if (scrollBeforeSwap === null) scrollBeforeSwap = { x: window.scrollX, y: window.scrollY };
}
function restoreTree() {
  // The swapped-in elements are new: look them up in the document, not in the event.
  document.querySelectorAll("details[data-node]").forEach((details) => {
    if (userOpen.has(details.dataset.node)) details.open = userOpen.get(details.dataset.node);
  });
  if (scrollBeforeSwap !== null) {
    const { x, y } = scrollBeforeSwap;
    scrollBeforeSwap = null;
    window.scrollTo(x, y);
  }
}
document.addEventListener("htmx:oobBeforeSwap", rememberScroll);
document.addEventListener("htmx:beforeSwap", rememberScroll);
document.addEventListener("htmx:oobAfterSwap", restoreTree);
document.addEventListener("htmx:afterSwap", restoreTree);
