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
