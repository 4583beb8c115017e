// Applies the saved theme before the page paints, so it never flashes the other one.
(function () {
  var saved = null;
  try { saved = localStorage.getItem("kiln-theme"); } catch (e) { /* storage may be off */ }
  var dark = saved ? saved === "dark" : window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = dark ? "dark" : "light";
})();
