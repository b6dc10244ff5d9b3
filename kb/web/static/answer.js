// Progressive enhancement only: the page works without it.
(function () {
  // Copy buttons for the share box (hidden unless this script runs).
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var field = document.getElementById(button.dataset.copy);
      var label = button.textContent;
      var done = function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = label; }, 1500);
      };
      field.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
      } else {
        document.execCommand("copy");
        done();
      }
    });
  });
  // Rerun form: leave out fields still at the answer's values, so shared URLs stay short.
  var form = document.querySelector("form.rerun-form");
  if (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("[data-default]").forEach(function (field) {
        if (field.value === field.dataset.default) { field.disabled = true; }
      });
      var seed = form.querySelector("input[name=seed]");
      if (seed && seed.value === "") { seed.disabled = true; }
    });
    // Coming back to this page from the history must find the form usable again.
    window.addEventListener("pageshow", function () {
      form.querySelectorAll("[disabled]").forEach(function (field) { field.disabled = false; });
    });
  }
  // A rerun waiting or computing: keep its status current from the page's JSON twin (which
  // waits a moment for the job itself), then load the page again when it is no longer
  // pending: with the new results, landing on the first changed one (or with the notice).
  var status = document.querySelector(".rerun-status[data-poll]");
  if (status) {
    var text = status.querySelector(".rerun-text");
    var shown = null, since = Date.now();
    var describe = function (rerun) {
      if (rerun.state === "running") {
        var seconds = Math.round((rerun.elapsed || 0) + (Date.now() - since) / 1000);
        return "Computing with " + rerun.settings + ": " + seconds + " s \u2026";
      }
      return "Rerun with " + rerun.settings + ": waiting to be computed, number " +
        rerun.position + " in the queue \u2026";
    };
    var tick = setInterval(function () { if (shown) { text.textContent = describe(shown); } }, 1000);
    var land = function () {
      clearInterval(tick);
      history.scrollRestoration = "manual";
      location.replace(location.pathname + location.search + "#first-change");
      location.reload();
    };
    var poll = function () {
      fetch(status.dataset.poll, { headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (response) { return response.json(); })
        .then(function (body) {
          var rerun = body.rerun;
          if (!rerun || (rerun.state !== "queued" && rerun.state !== "running")) { land(); return; }
          shown = rerun;
          since = Date.now();
          text.textContent = describe(rerun);
          setTimeout(poll, 1000);
        }, function () { setTimeout(poll, 3000); });  // offline a moment: try again
    };
    setTimeout(poll, 1000);
  }
  // Landed after a rerun: show the first changed result (scrolling was left to this script).
  var first = location.hash === "#first-change" && document.getElementById("first-change");
  if (first) { first.scrollIntoView({ block: "center" }); }
})();
