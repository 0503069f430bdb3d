// Dashboard behaviour shared by every page (loaded by templates/base.html). No inline
// scripts or handlers anywhere: the Content-Security-Policy allows scripts from our origin only.
(function () {
  "use strict";
  // <button data-copy="element-id">: copy that element's text to the clipboard.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () { button.textContent = "Copied"; });
  });
})();
