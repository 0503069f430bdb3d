// Background exports (templates/reports/_jobs.html): poll unfinished jobs. A static file for the CSP.
(function () {
  // Poll the unfinished jobs until they finish; then offer the file.
  function poll() {
    var rows = document.querySelectorAll('tr[data-status="PENDING"], tr[data-status="RUNNING"]');
    if (!rows.length) return;
    rows.forEach(function (row) {
      fetch(row.dataset.statusUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (job) {
          if (!job) return;
          row.dataset.status = job.status;
          row.querySelector("progress").value = job.progress;
          row.querySelector(".job-status").textContent = job.status + (job.rows_total ? " · " + job.rows_done + " / " + job.rows_total + " rows" : "");
          var cell = row.querySelector(".job-file");
          if (job.download_url) {
            cell.textContent = "";
            var link = document.createElement("a");
            link.href = job.download_url; link.textContent = job.file_name;
            cell.appendChild(link);
          } else if (job.error) {
            cell.textContent = job.error;
          }
        });
    });
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 1000);
})();
