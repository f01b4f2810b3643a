// Vial barcodes on the prepare page: a scan (ended by Enter, or leaving the field) is read by the server
// (orders/gs1.py) and fills the row's empty lot and expiry; the GTIN is shown, the product stays the
// technician's choice. Without JavaScript the form reads the same barcode on submit.
(function () {
  "use strict";
  var form = document.querySelector("form[data-vial-scan-url]");
  if (!form) return;
  var url = form.dataset.vialScanUrl;

  function say(row, text, isError) {
    var note = document.getElementById("scan-note-" + row);
    if (!note) return;
    note.textContent = text;
    note.className = isError ? "error-text" : "muted";
  }

  function read(field) {
    var row = field.dataset.gs1Row;
    var code = field.value.trim();
    if (!code || field.dataset.readCode === code) return;
    field.dataset.readCode = code;
    fetch(url + "?code=" + encodeURIComponent(field.value), { headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) {
          return { ok: response.ok, body: body };
        });
      })
      .then(function (answer) {
        if (!answer.ok) {
          field.setAttribute("aria-invalid", "true");
          say(row, (answer.body.code || ["Not a vial barcode."])[0], true);
          return;
        }
        var lot = form.querySelector("[name=lot-" + row + "]");
        var expiry = form.querySelector("[name=expiry-" + row + "]");
        if (lot && !lot.value) lot.value = answer.body.lot;
        if (expiry && !expiry.value) expiry.value = answer.body.expiry;
        field.removeAttribute("aria-invalid");
        if (answer.body.expired) {
          field.setAttribute("aria-invalid", "true");
          say(row, answer.body.expired, true);
        } else {
          say(row, "GTIN " + answer.body.gtin + ": lot " + answer.body.lot + ", expires " + answer.body.expiry +
            ". Choose the product.", false);
        }
      })
      .catch(function () {
        say(row, "The barcode is read when the form is sent.", false);
      });
  }

  form.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.dataset && event.target.dataset.gs1Row !== undefined) read(event.target);
  });
  form.addEventListener("change", function (event) {
    if (event.target.dataset && event.target.dataset.gs1Row !== undefined) read(event.target);
  });
})();
