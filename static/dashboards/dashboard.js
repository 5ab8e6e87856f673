/* Draws the dashboard charts from the JSON embedded by the page (no network call). */
(function () {
  "use strict";
  var el = document.getElementById("dashboard-charts");
  if (!el || typeof Chart === "undefined") { return; }
  var d = JSON.parse(el.textContent);
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  var blue = "#0b5cad", orange = "#e07b00", grey = "#8894a0", red = "#b3261e";
  function chart(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) { window.pdsCharts = window.pdsCharts || {}; window.pdsCharts[id] = new Chart(canvas, config); }
  }
  chart("chart-sites", {type: "bar", data: {labels: d.sites.labels, datasets: [
    {label: "Urgences (vitale, urgente)", data: d.sites.emergency, backgroundColor: red},
    {label: "Non urgentes", data: d.sites.non_emergency, backgroundColor: grey}]},
    options: {plugins: {title: {display: true, text: "Interprétations par site"}},
              scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true}}}});
  chart("chart-modalities", {type: "bar", data: {labels: d.modalities.labels, datasets: [
    {label: "Demandes", data: d.modalities.requests, backgroundColor: blue}]},
    options: {plugins: {title: {display: true, text: "Demandes par modalité"}}, scales: {y: {beginAtZero: true}}}});
  chart("chart-substitution", {type: "line", data: {labels: d.substitution.labels, datasets: [
    {label: "Scanner (CT)", data: d.substitution.ct, borderColor: blue, backgroundColor: blue},
    {label: "Échographie (US)", data: d.substitution.us, borderColor: orange, backgroundColor: orange}]},
    options: {plugins: {title: {display: true, text: "Scanner vs échographie (substitution)"}},
              scales: {y: {beginAtZero: true}}}});
  chart("chart-turnaround", {type: "bar", data: {labels: d.turnaround.labels, datasets: [
    {label: "Médiane (min)", data: d.turnaround.median, backgroundColor: blue},
    {label: "90e percentile (min)", data: d.turnaround.p90, backgroundColor: orange}]},
    options: {plugins: {title: {display: true, text: "Délais par étape"}}, scales: {y: {beginAtZero: true}}}});
  chart("chart-load", {type: "bar", data: {labels: d.load.labels, datasets: [
    {label: "Dossiers par garde", data: d.load.per_shift, backgroundColor: blue}]},
    options: {indexAxis: "y", plugins: {title: {display: true, text: "Charge par radiologue"}}}});
})();
