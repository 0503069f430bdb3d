// Record a gift (templates/donations/gift_form.html): donor picker, kind-of-gift fields. A static file for the CSP.
(function () {
  const form = document.getElementById('gift-form');
  const hidden = form.querySelector('input[name=donor]');
  const search = document.getElementById('donor-search');
  const chosen = document.getElementById('donor-chosen');
  const newBox = form.querySelector('input[name=new_donor]');
  function syncKind() {
    const kind = (form.querySelector('input[name=method]:checked') || {}).value;
    document.getElementById('in-kind-fields').hidden = kind !== 'IN_KIND';
    document.getElementById('cheque-fields').hidden = kind === 'IN_KIND' || kind === 'CASH';
  }
  function syncNew() {
    document.getElementById('new-donor-fields').hidden = !newBox.checked;
    if (newBox.checked) { hidden.value = ''; chosen.textContent = 'A new donor will be created with this gift.'; }
  }
  form.addEventListener('change', function (e) {
    if (e.target.name === 'method') syncKind();
    if (e.target === newBox) syncNew();
  });
  document.getElementById('donor-options').addEventListener('click', function (e) {
    const btn = e.target.closest('.pick-donor');
    if (!btn) return;
    hidden.value = btn.dataset.id;
    search.value = btn.dataset.label;
    chosen.textContent = 'Chosen: ' + btn.dataset.label;
    newBox.checked = false; syncNew();
    this.innerHTML = '';
    document.body.dispatchEvent(new Event('donor-picked'));
    document.getElementById('id_amount').focus();
  });
  search.addEventListener('input', function () { if (hidden.value) { hidden.value = ''; chosen.textContent = 'No donor chosen yet.'; } });
  // Enter in the search picks the first match instead of sending a gift without a donor; Down moves into the matches.
  search.addEventListener('keydown', function (e) {
    const first = document.querySelector('#donor-options .pick-donor');
    if (e.key === 'Enter') { e.preventDefault(); if (first) first.click(); }
    else if (e.key === 'ArrowDown' && first) { e.preventDefault(); first.focus(); }
  });
  document.getElementById('donor-options').addEventListener('keydown', function (e) {
    const buttons = Array.from(this.querySelectorAll('.pick-donor'));
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    if (e.key === 'ArrowDown' && i + 1 < buttons.length) { e.preventDefault(); buttons[i + 1].focus(); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); (i > 0 ? buttons[i - 1] : search).focus(); }
    else if (e.key === 'Escape') { this.innerHTML = ''; search.focus(); }
  });
  syncKind(); syncNew();
})();
