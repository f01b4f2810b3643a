// The idle timeout, seen from the page: a warning a minute before it ends the session ("Stay signed in" keeps it),
// typing counts as activity, and what was typed survives it. At the end the forms' values are kept in this
// tab's sessionStorage (never passwords or tokens) and the page reloads: the server logs the user out and sends
// them to log in; after the login they are back on the page with their values restored. A form submitted after
// the session ended server-side is kept the same way.
(function () {
  const body = document.body;
  const key = (path) => "labflow.typed:" + path;
  const skip = new Set(["password", "hidden", "file", "submit", "button", "reset"]);
  const fields = (form) => Array.from(form.elements).filter((el) => el.name && !skip.has(el.type));
  const forms = () => Array.from(document.querySelectorAll("main form"));

  function save(path) {
    const data = forms().map((form) =>
      fields(form).map((el) => [el.name, el.type === "checkbox" || el.type === "radio" ? (el.checked ? el.value : null) : el.value]));
    if (data.some((form) => form.some(([, value]) => value))) sessionStorage.setItem(key(path), JSON.stringify(data));
  }

  function restore() {
    if (document.querySelector("form.login")) return; // keep it until the user is back on the page
    const raw = sessionStorage.getItem(key(location.pathname));
    // Kept values live until the next page view: restored only when it comes back through a login.
    Object.keys(sessionStorage).filter((k) => k.startsWith(key(""))).forEach((k) => sessionStorage.removeItem(k));
    if (!raw || !/\/accounts\/login\//.test(document.referrer)) return;
    const saved = JSON.parse(raw);
    let restored = 0;
    forms().forEach((form, i) => {
      for (const [name, value] of saved[i] || []) {
        for (const el of fields(form).filter((f) => f.name === name)) {
          if (el.type === "checkbox" || el.type === "radio") {
            if (value !== null && el.value === value) { el.checked = true; restored++; }
          } else if (value) { el.value = value; restored++; }
        }
      }
    });
    if (restored) {
      const note = document.createElement("div");
      note.className = "ok"; note.setAttribute("role", "status"); note.dataset.testid = "restored";
      note.textContent = "Your session had ended: what you typed is back. Check it, then submit.";
      document.querySelector("main").prepend(note);
    }
  }

  restore();
  // Whatever takes the user away (the reload at the end, a background request finding the session over, a link),
  // the values go with them; they come back only through a login.
  window.addEventListener("pagehide", () => save(location.pathname));
  const idle = Number(body.dataset.idleSeconds || 0);
  if (!idle || !body.dataset.keepaliveUrl) return;
  // The server records activity at most every 30 s, so its timeout may come up to 30 s before ours: save before.
  const warnAfter = idle - Math.min(90, idle * 0.7), saveAfter = idle - Math.min(35, idle * 0.4), endAfter = idle + 1;
  const dialog = document.getElementById("session-warning");
  let timers = [], lastKeepalive = Date.now();

  function arm() {
    timers.forEach(clearTimeout);
    timers = [
      setTimeout(() => { if (dialog && !dialog.open) dialog.showModal(); }, warnAfter * 1000),
      setTimeout(() => save(location.pathname), saveAfter * 1000),
      setTimeout(() => location.assign(location.href), endAfter * 1000),
    ];
  }

  function keepalive() {
    lastKeepalive = Date.now();
    return fetch(body.dataset.keepaliveUrl, { method: "POST", headers: { "X-CSRFToken": body.dataset.csrf }, credentials: "same-origin" })
      .then((response) => { if (response.status === 204) arm(); else location.assign(location.href); });
  }

  document.addEventListener("input", () => {
    if (Date.now() - lastKeepalive > 60_000) keepalive(); // typing is activity; at most once a minute
  });
  document.addEventListener("submit", (event) => { if (event.target.closest("main")) save(new URL(event.target.action, location.href).pathname); }, true);
  if (dialog) dialog.querySelector("[data-stay]").addEventListener("click", () => { dialog.close(); keepalive(); });
  arm();
})();
