// Scanner-friendly forms: a scan ends with Enter, which moves to the next field instead of submitting.
document.addEventListener("keydown", (event) => {
  const field = event.target;
  const form = field.closest && field.closest("form[data-scan-form]");
  if (!form || event.key !== "Enter" || field.tagName === "BUTTON") return;
  const fields = [...form.querySelectorAll("input:not([type=hidden]), select")];
  const next = fields[fields.indexOf(field) + 1];
  if (next) {
    event.preventDefault();
    next.focus();
  }
});
