// The public giving form (templates/recommendations/give.html): the running total. A static file for the CSP.
(function () {
  var form = document.getElementById("give-form") || document.getElementById("pay-form");  // pay-form: by card (pay.js)
  var out = document.getElementById("total");
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
  function cents(v) {
    v = (v || "").replace(/[$,\s]/g, "");
    if (!v) return 0;
    if (!/^\d{1,9}(\.\d{1,2})?$/.test(v)) return NaN;
    var parts = v.split(".");
    return parseInt(parts[0], 10) * 100 + parseInt(((parts[1] || "") + "00").slice(0, 2), 10);
  }
  function money(c) {
    return "$" + Math.floor(c / 100).toLocaleString("en-AU") + "." + String(c % 100).padStart(2, "0");
  }
  function update() {
    var total = 0, bad = false;
    form.querySelectorAll("[data-fixed-cents]").forEach(function (el) { total += parseInt(el.getAttribute("data-fixed-cents"), 10); });
    form.querySelectorAll("input[data-amount]").forEach(function (el) {
      var c = cents(el.value);
      if (isNaN(c)) bad = true; else total += c;
    });
    out.textContent = bad ? "Check the amounts" : money(total);
  }
  form.addEventListener("input", update);
  update();
})();
