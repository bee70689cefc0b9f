// Progressive enhancement only: every page works without it.
// Times in the viewer's zone (UTC stays in the title), and copy buttons.
document.addEventListener("DOMContentLoaded", function () {
  var fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) { t.textContent = fmt.format(d); t.title = t.getAttribute("datetime") + " (UTC)"; }
  });
  document.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
    if (!navigator.clipboard) { b.hidden = true; return; }
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(b.getAttribute("data-copy")).then(function () {
        var was = b.textContent; b.textContent = "Copied"; setTimeout(function () { b.textContent = was; }, 1500);
      });
    });
  });
});
