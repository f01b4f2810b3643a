// No back-button replay: pages are sent with Cache-Control: no-store (core.views.html_view), so going back fetches
// the page's current state. A browser may still restore a page whole from its back-forward cache; then reload it,
// so a step already taken (released, administered) never shows its stale form.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) window.location.reload();
});
