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
})();
