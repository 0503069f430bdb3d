// The Reports period picker (templates/reports/reports.html): a preset fills the
// two dates; editing a date makes the range custom. Without this script the
// server applies the chosen preset itself. A static file for the CSP.
(function () {
  var form = document.querySelector("form[data-period-picker]");
  var data = document.getElementById("period-presets");
  if (!form || !data) return;
  var presets = JSON.parse(data.textContent);
  var from = form.querySelector('[data-period-date="date_from"]');
  var to = form.querySelector('[data-period-date="date_to"]');
  var radios = form.querySelectorAll('input[name="preset"]');
  radios.forEach(function (radio) {
    radio.addEventListener("change", function () {
      var range = presets[radio.value];
      if (radio.checked && range) { from.value = range[0]; to.value = range[1]; }
    });
  });
  [from, to].forEach(function (input) {
    input.addEventListener("input", function () {
      radios.forEach(function (radio) { radio.checked = radio.value === "custom"; });
    });
  });
})();
