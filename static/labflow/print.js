// Print buttons without inline script (the CSP allows only same-origin files).
document.addEventListener("click", (event) => {
  if (event.target.closest("[data-print]")) window.print();
});
