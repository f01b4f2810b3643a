// Result entry grid: Enter moves to the next value field like Tab; on the last one it submits.
document.addEventListener("keydown", (event) => {
  const input = event.target;
  if (event.key !== "Enter" || !input.matches("form[data-grid] input[data-testid=value-input]")) return;
  const fields = [...input.form.querySelectorAll("input[data-testid=value-input]")];
  const next = fields[fields.indexOf(input) + 1];
  if (next) {
    event.preventDefault();
    next.focus();
  }
});

// A select that lists pages: choosing an option opens it.
document.addEventListener("change", (event) => {
  if (event.target.matches("select[data-nav-select]")) window.location.assign(event.target.value);
});
