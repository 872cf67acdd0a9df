// The hall's screens' only script (no inline script is allowed by the pages' CSP). It adds to
// pages that work without it: uploads a material with the session's CSRF token, follows a
// case's timeline live, keeps the supervisors' wall current, prints a receipt.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // Uploads: <input type="file" data-upload="/screens/clerk/drafts/{id}/materials/{code}">,
  // in the page and in any part added to it later (a 补正 form).
  function bindUploads(root) {
    root.querySelectorAll("input[type=file][data-upload]").forEach(function (input) {
      input.addEventListener("change", function () {
        var file = input.files && input.files[0];
        var status = document.getElementById(input.id + "-status");
        if (!file) return;
        if (status) status.textContent = "上传中…";
        fetch(input.dataset.upload, {
          method: "PUT",
          headers: { "X-CSRF-Token": csrf, "Content-Type": file.type || "application/octet-stream",
            "X-File-Name": encodeURIComponent(file.name) },
          body: file,
          credentials: "same-origin",
        }).then(function (r) {
          return r.text().then(function (text) {
            if (status) status.textContent = r.ok ? "已上传：" + text : "上传失败：" + text;
            input.dataset.uploaded = r.ok ? "yes" : "no";
          });
        }, function () { if (status) status.textContent = "上传失败：网络错误"; });
      });
    });
  }
  bindUploads(document);

  // The 补正 forms follow the matters' states: the case page is read again (as a reload would)
  // when a step turns returned and has no form yet, or leaves returned while its form is shown;
  // a form the fresh page has is added, one it no longer has is taken away. Forms already on the
  // page are kept as they are, with whatever the clerk has typed. One read at a time; events
  // arriving meanwhile ask for one more.
  function supplementSync(casePage, after) {
    var running = false, again = false;
    function run() {
      if (running) { again = true; return; }
      running = true;
      fetch(casePage, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html");
          document.querySelectorAll("section.supplement[id]").forEach(function (shown) {
            if (!fresh.getElementById(shown.id)) shown.remove();
          });
          var shown = document.querySelectorAll("section.supplement[id]");
          var anchor = shown.length ? shown[shown.length - 1] : after;
          fresh.querySelectorAll("section.supplement[id]").forEach(function (asked) {
            if (document.getElementById(asked.id)) return;
            var section = document.importNode(asked, true);
            anchor.after(section);
            anchor = section;
            bindUploads(section);
          });
        }, function () { /* offline a moment: the next event tries again */ })
        .then(function () {
          running = false;
          if (again) { again = false; run(); }
        });
    }
    return function (step, stateCode) {
      var form = document.getElementById("supplement-" + step);
      if ((stateCode === "returned") !== Boolean(form)) run();
    };
  }

  // A live timeline: <ol data-events="/screens/clerk/cases/{id}/events">.
  document.querySelectorAll("ol[data-events]").forEach(function (list) {
    var source = new EventSource(list.dataset.events);
    var status = document.getElementById("case-status");
    var supplements = supplementSync(list.dataset.events.replace(/\/events$/, ""),
      list.closest("section") || list);
    source.addEventListener("message", function (e) {
      try {
        var event = JSON.parse(e.data);
        var item = document.createElement("li");
        item.textContent = (event.at || "") + "　" + (event.text || "");
        list.appendChild(item);
        if (status && event.status) status.textContent = event.status;
        if (status && event.status_code) status.dataset.status = event.status_code;
        var row = event.step && event.state && document.querySelector('tr[data-step="' + CSS.escape(event.step) + '"] td[data-state]');
        if (row) { row.textContent = event.state; row.dataset.state = event.state_code; }
        if (event.step && event.state_code) supplements(event.step, event.state_code);
      } catch (_) { /* a line we do not understand is skipped */ }
    });
    // A final case's stream ends; the browser reconnects with the last event's id and is
    // answered 204, which closes the source for good (the timeline is whole). A dropped
    // connection mid-case reconnects and goes on after what is shown.
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) list.dataset.live = "ended";
    });
  });

  // A part of a page kept current: <div id="…" data-refresh="30"> is fetched again from the
  // page's own address every so many seconds and swapped in, unless the keyboard's focus is
  // inside it (tabbing through its links is not interrupted).
  document.querySelectorAll("[data-refresh][id]").forEach(function (part) {
    var seconds = Math.max(5, parseInt(part.dataset.refresh, 10) || 30);
    window.setInterval(function () {
      if (part.contains(document.activeElement)) return;
      fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html || part.contains(document.activeElement)) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(part.id);
          if (fresh) part.replaceChildren.apply(part, Array.prototype.slice.call(fresh.childNodes).map(function (n) {
            return document.importNode(n, true);
          }));
        }, function () { /* offline a moment: the next turn tries again */ });
    }, seconds * 1000);
  });

  // Lookups filling the form: <button data-lookup="…/clerk/lookups/{name}" data-from="f.a,f.b"
  // data-service="…"> sends the fields it names; the answer's fill goes into the form's fields
  // of those names, its text beside the button.
  document.querySelectorAll("button[data-lookup]").forEach(function (button) {
    button.addEventListener("click", function () {
      var form = button.form;
      var status = document.getElementById(button.getAttribute("aria-describedby"));
      var fields = {};
      button.dataset.from.split(",").forEach(function (name) {
        var input = form && form.elements.namedItem(name);
        if (input) fields[name] = input.value;
      });
      if (status) status.textContent = "查询中…";
      fetch(button.dataset.lookup, {
        method: "POST",
        headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
        body: JSON.stringify({ service: button.dataset.service, fields: fields }),
        credentials: "same-origin",
      }).then(function (r) {
        return r.json().then(function (answer) {
          Object.keys(answer.fill || {}).forEach(function (name) {
            var input = form && form.elements.namedItem(name);
            if (input && "value" in input) input.value = answer.fill[name];
          });
          if (status) status.textContent = answer.text || (r.ok ? "" : "查询未成功");
          button.dataset.looked = r.ok ? "yes" : "no";
        });
      }, function () { if (status) status.textContent = "查询未成功：网络错误"; });
    });
  });

  document.querySelectorAll("button[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });

  // A form with a file: <form data-multipart> is sent as multipart with the CSRF token in its
  // header (the guard reads no multipart body); the page it leads to, or the refusal, is shown.
  document.querySelectorAll("form[data-multipart]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var status = document.getElementById(form.querySelector("input[type=file]").id + "-status");
      if (status) status.textContent = "上传中…";
      fetch(form.action, {
        method: "POST",
        headers: { "X-CSRF-Token": csrf },
        body: new FormData(form),
        credentials: "same-origin",
      }).then(function (r) {
        if (r.ok) { window.location.assign(r.url); return; }
        return r.text().then(function (html) {
          var page = new DOMParser().parseFromString(html, "text/html");
          var main = page.querySelector("main");
          if (main) document.querySelector("main").replaceWith(main);
          else if (status) status.textContent = "上传失败";
        });
      }, function () { if (status) status.textContent = "上传失败：网络错误"; });
    });
  });

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  });
})();
