// Alert push for the inbox and the header badge (docs/architecture.md §3 Push).
// Server-sent events say *that* alerts changed (ids and counts only); the rows are fetched through the normal
// scoped views. On every (re)connect the server sends `sync` and the page refetches, so a lost event only
// delays. While push is down the page polls every data-poll-seconds. A new critical alert raises a system
// notification when the tab is in the background (text per ALERT_NOTIFICATION_DETAIL), with an optional sound.
(function () {
  "use strict";

  var body = document.body;
  var eventsUrl = body.dataset.eventsUrl;
  if (!eventsUrl || !window.htmx) {
    return;
  }
  var pollMs = (parseInt(body.dataset.pollSeconds, 10) || 2) * 1000;
  var soundKey = "labflow.alertSound." + (body.dataset.userId || "");
  var pushed = false;
  var inFlight = false;
  var again = null; // a refresh asked for while one was running: its freshness

  function setState(live) {
    body.dataset.push = live ? "on" : "off";
    var state = document.getElementById("push-state");
    if (state) {
      state.textContent = live ? "live" : "checking every " + pollMs / 1000 + " s";
    }
  }

  function refresh(fresh) {
    if (inFlight) {
      again = again === true || fresh;
      return;
    }
    var headers = { "X-LabFlow-Poll": "1" };
    if (fresh) {
      headers["X-LabFlow-Fresh"] = "1"; // a push event: the rows, never a 304
    }
    var inbox = document.getElementById("inbox");
    var badge = document.getElementById("alert-count");
    var target = inbox || badge;
    if (!target || !target.dataset.url) {
      return;
    }
    inFlight = true;
    var done = function () {
      inFlight = false;
      if (again !== null) {
        var next = again;
        again = null;
        refresh(next);
      }
    };
    htmx
      .ajax("GET", target.dataset.url, {
        target: target,
        swap: inbox ? "innerHTML" : "outerHTML",
        headers: headers,
      })
      .then(done, done);
  }

  // --- Push, with polling as the fallback ---
  function connect() {
    var source = new EventSource(eventsUrl);
    source.addEventListener("sync", function () {
      pushed = true;
      setState(true);
      refresh(true);
    });
    source.addEventListener("alerts", function () {
      refresh(true);
    });
    source.onerror = function () {
      pushed = false;
      setState(false);
      if (source.readyState === EventSource.CLOSED) {
        // Refused (push unavailable, signed out): poll, and try push again later.
        source.close();
        window.setTimeout(connect, 10000);
      }
    };
  }

  window.setInterval(function () {
    if (!pushed) {
      refresh(false);
    }
  }, pollMs);
  setState(false);
  if (window.EventSource) {
    connect();
  }

  // --- Notifications of new critical alerts ---
  var seen = null;

  function soundOn() {
    try {
      return window.localStorage.getItem(soundKey) === "1";
    } catch (e) {
      return false;
    }
  }

  function beep() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) {
      return;
    }
    var context = new Context();
    var tone = context.createOscillator();
    var gain = context.createGain();
    tone.frequency.value = 880;
    gain.gain.value = 0.2;
    tone.connect(gain);
    gain.connect(context.destination);
    tone.start();
    tone.stop(context.currentTime + 0.4);
  }

  function notify(rows) {
    if (!("Notification" in window) || Notification.permission !== "granted") {
      return;
    }
    var text = rows.length + " new critical alert" + (rows.length > 1 ? "s are" : " is") + " waiting in LabFlow.";
    if (rows.length === 1 && rows[0].dataset.notify) {
      text = rows[0].dataset.notify;
    }
    var note = new Notification("LabFlow: critical alert", { body: text, tag: "labflow-critical" });
    note.onclick = function () {
      window.focus();
      note.close();
    };
    if (soundOn()) {
      beep();
    }
  }

  function scan() {
    var rows = document.querySelectorAll("#inbox tr[data-alert-id]");
    var fresh = [];
    var first = seen === null;
    seen = seen || {};
    rows.forEach(function (row) {
      var id = row.dataset.alertId;
      if (!first && !seen[id] && row.dataset.severity === "4") {
        fresh.push(row);
      }
      seen[id] = true;
    });
    if (fresh.length && document.hidden) {
      notify(fresh);
    }
  }

  body.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "inbox") {
      scan();
    }
  });
  scan();

  var enable = document.getElementById("notify-enable");
  if (enable && "Notification" in window && Notification.permission === "default") {
    enable.hidden = false;
    enable.addEventListener("click", function () {
      Notification.requestPermission().then(function () {
        enable.hidden = true;
      });
    });
  }
  var sound = document.getElementById("notify-sound");
  if (sound) {
    sound.checked = soundOn();
    sound.addEventListener("change", function () {
      try {
        window.localStorage.setItem(soundKey, sound.checked ? "1" : "0");
      } catch (e) {
        /* storage refused: no sound preference */
      }
    });
  }
})();
