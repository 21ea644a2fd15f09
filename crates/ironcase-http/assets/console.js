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
