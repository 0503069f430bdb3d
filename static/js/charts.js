// Print the data table behind every chart (templates/charts/chart.html): open each <details> before printing.
window.addEventListener("beforeprint", function () {
  document.querySelectorAll("details.chart-data").forEach(function (d) { d.open = true; });
});
