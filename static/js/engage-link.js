// New checkout link (templates/engage/link_new.html): the donor picker. A static file for the CSP.
(function () {
  "use strict";
  var form = document.getElementById("link-form");
  if (!form) return;
  var hidden = form.querySelector("input[name=donor]");
  var search = document.getElementById("donor-search");
  var chosen = document.getElementById("donor-chosen");
  var options = document.getElementById("donor-options");
  options.addEventListener("click", function (e) {
    var btn = e.target.closest(".pick-donor");
    if (!btn) return;
    hidden.value = btn.dataset.id;
    search.value = btn.dataset.label;
    chosen.textContent = "Chosen: " + btn.dataset.label + (btn.dataset.label.indexOf("@") < 0 ? " (no email: add one to the donor first)" : "");
    options.innerHTML = "";
    document.getElementById("id_amount").focus();
  });
  search.addEventListener("input", function () {
    if (hidden.value) { hidden.value = ""; chosen.textContent = "No donor chosen yet. The donor needs an email."; }
  });
  // Enter in the search picks the first match instead of sending the form; Down moves into the matches.
  search.addEventListener("keydown", function (e) {
    var first = options.querySelector(".pick-donor");
    if (e.key === "Enter") { e.preventDefault(); if (first) first.click(); }
    else if (e.key === "ArrowDown" && first) { e.preventDefault(); first.focus(); }
  });
  options.addEventListener("keydown", function (e) {
    var buttons = Array.prototype.slice.call(options.querySelectorAll(".pick-donor"));
    var i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    if (e.key === "ArrowDown" && i + 1 < buttons.length) { e.preventDefault(); buttons[i + 1].focus(); }
    else if (e.key === "ArrowUp") { e.preventDefault(); (i > 0 ? buttons[i - 1] : search).focus(); }
    else if (e.key === "Escape") { options.innerHTML = ""; search.focus(); }
  });
})();
