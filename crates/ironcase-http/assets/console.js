// Ironcase console: small enhancements only; every page works without it.
// Loaded as a module from our own origin (the Content-Security-Policy
// allows no inline script).

// Buttons with `data-copy` copy the text of the element it names.
document.addEventListener("click", (e) => {
  const button = e.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(() => {
    button.textContent = "Copied";
  });
});

// Live parts: an element with `data-live` (an event stream of this
// console) is fetched again, a moment after each event, and replaced by the
// same element of the fresh page; the server renders it, as on a reload.
for (const part of document.querySelectorAll("[data-live]")) {
  let pending = null;
  const refresh = async () => {
    pending = null;
    const r = await fetch(location.href, { headers: { accept: "text/html" }, credentials: "same-origin" });
    if (!r.ok) return;
    const fresh = new DOMParser().parseFromString(await r.text(), "text/html").getElementById(part.id);
    if (fresh) part.replaceChildren(...fresh.childNodes);
  };
  const events = new EventSource(part.dataset.live);
  events.onmessage = () => {};
  events.addEventListener("error", () => {});
  const onEvent = () => {
    if (!pending) pending = setTimeout(refresh, 150);
  };
  for (const type of ["incident.created", "incident.updated", "incident.status_changed", "incident.deleted",
    "comment.added", "ioc.added", "ioc.removed", "evidence.added", "evidence.deleted", "alert.created", "alert.promoted"]) {
    events.addEventListener(type, onEvent);
  }
  events.addEventListener("end", () => events.close());
}

// Single sign-on: on to the organisation's provider (a link, not the sign-in
// form's redirect, which the page's form-action would stop at our origin).
const onward = document.getElementById("sso-continue");
if (onward) location.replace(onward.href);

// Single sign-on: the one-time code arrives in the URL's fragment.
const finish = document.getElementById("sso-finish");
if (finish) {
  const code = new URLSearchParams(location.hash.slice(1)).get("code");
  history.replaceState(null, "", location.pathname);
  if (code) {
    finish.elements.code.value = code;
    finish.submit();
  }
}

// Links e-mailed with a token in the fragment (an invitation, a password
// reset): the token goes into the form, and out of the address bar.
for (const form of document.querySelectorAll("form.token-form")) {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (token) {
    form.elements.token.value = token;
    history.replaceState(null, "", location.pathname);
  }
}

// Evidence uploads show their progress; without this script the form posts
// as usual.
for (const form of document.querySelectorAll("form.evidence-upload")) {
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const bar = form.querySelector("progress");
    const button = form.querySelector("button[type=submit]");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", (p) => {
      if (p.lengthComputable) bar.value = Math.round((100 * p.loaded) / p.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status < 400) location.assign(xhr.responseURL || location.href);
      else {
        // The server's page for the refusal, in place of this one's main part.
        const main = new DOMParser().parseFromString(xhr.responseText, "text/html").querySelector("main");
        if (main) document.querySelector("main").replaceWith(main);
      }
    });
    bar.hidden = false;
    button.disabled = true;
    xhr.send(new FormData(form));
  });
}
