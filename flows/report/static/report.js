/* PixelRefer report: filter boxes and the overlay player. No framework, no network: works from file://. */
(function () {
  "use strict";

  function norm(text) { return (text || "").toLowerCase().replace(/\s+/g, " ").trim(); }

  // Video page: narrow the timeline rows and object cards to those whose captions/answers contain the text.
  var filter = document.getElementById("filter");
  if (filter) {
    filter.addEventListener("input", function () {
      var q = norm(filter.value);
      var shown = 0;
      document.querySelectorAll(".track-row[data-text], .card[data-text]").forEach(function (el) {
        var hit = !q || el.getAttribute("data-text").indexOf(q) >= 0;
        el.hidden = !hit;
        if (hit && el.classList.contains("card")) { shown += 1; }
      });
      var count = document.getElementById("filter-count");
      if (count) { count.textContent = q ? shown + (shown === 1 ? " object" : " objects") : ""; }
    });
  }

  // "play the overlay from t": seek the page's player instead of leaving the page.
  document.addEventListener("click", function (ev) {
    var link = ev.target && ev.target.closest ? ev.target.closest("a.play-at") : null;
    var video = document.getElementById("overlay");
    if (!link || !video) { return; }
    ev.preventDefault();
    var t = parseFloat(link.getAttribute("data-t")) || 0;
    window.location.hash = "";
    video.currentTime = t;
    video.scrollIntoView({ block: "center" });
    var playing = video.play();
    if (playing && playing.catch) { playing.catch(function () { /* autoplay refused: the player shows t */ }); }
  });

  // Index pages: search every object of the report (data file loaded on first use, by a script tag,
  // since browsers refuse fetch() on file://).
  var search = document.getElementById("search");
  if (!search) { return; }
  var results = document.getElementById("search-results");
  var counter = document.getElementById("search-count");
  var root = search.getAttribute("data-source").replace(/data\/objects\.js$/, "");
  var loading = false;
  var LIMIT = 200;

  function show() {
    var all = window.PIXELREFER_OBJECTS || [];
    var q = norm(search.value);
    while (results.firstChild) { results.removeChild(results.firstChild); }
    if (!q) { results.hidden = true; counter.textContent = ""; return; }
    var n = 0;
    for (var i = 0; i < all.length; i += 1) {
      var o = all[i];  // [page, object id, caption, search text, crop, video name, colour]
      if (o[3].indexOf(q) < 0) { continue; }
      n += 1;
      if (n > LIMIT) { continue; }
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = root + o[0] + "#obj-" + o[1];
      if (o[4]) {
        var img = document.createElement("img");
        img.loading = "lazy"; img.src = root + o[4]; img.alt = "object " + o[1];
        a.appendChild(img);
      }
      var text = document.createElement("span");
      text.textContent = o[5] + " · object " + o[1] + ": " + (o[2] || "not described yet");
      text.style.borderLeft = "4px solid " + o[6];
      text.style.paddingLeft = "4px";
      a.appendChild(text);
      li.appendChild(a);
      results.appendChild(li);
    }
    results.hidden = false;
    counter.textContent = n + (n === 1 ? " object" : " objects") + (n > LIMIT ? " (first " + LIMIT + " shown)" : "");
  }

  search.addEventListener("input", function () {
    if (window.PIXELREFER_OBJECTS || !norm(search.value)) { show(); return; }
    if (loading) { return; }
    loading = true;
    var script = document.createElement("script");
    script.src = search.getAttribute("data-source");
    script.onload = show;
    document.head.appendChild(script);
  });
})();
