// leadrelay's dashboard works without this script. With it:
// - an element with data-live="<url>" is refreshed from that URL every few seconds while the
//   page is visible (the inbox shows new leads without a reload); the element named by its
//   data-status says when, and the focus stays on the link it was on;
// - a form with data-confirm="<question>" asks before it is sent.
"use strict";

(function () {
  const REFRESH_MS = 3000;

  // The server answers 204 while the region is as this page shows it (data-seen), else the
  // new content with its version in X-Inbox-Version.
  function refresh(region) {
    if (document.hidden) return;
    const url = region.dataset.live + "?seen=" + encodeURIComponent(region.dataset.seen || "");
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (answer) {
        if (answer.status !== 200 || answer.redirected) return null;
        const version = answer.headers.get("X-Inbox-Version");
        return answer.text().then(function (html) { return { html: html, version: version }; });
      })
      .then(function (fresh) {
        if (fresh === null) return;
        const focused = document.activeElement && document.activeElement.id;
        region.innerHTML = fresh.html;
        if (fresh.version) region.dataset.seen = fresh.version;
        // One short sentence for screen readers, instead of reading the whole region again.
        const status = region.dataset.status && document.getElementById(region.dataset.status);
        if (status) status.textContent = "Updated at " + new Date().toLocaleTimeString() + ".";
        if (focused) {
          const again = document.getElementById(focused);
          if (again) again.focus();
        }
      })
      .catch(function () { /* offline for a moment: the next round tries again */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(function (region) {
      setInterval(function () { refresh(region); }, REFRESH_MS);
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  });
})();
