// Search in the browser, for the static build (kb build): the answers' index was made when
// the site was built (search-index.json, beside this page) and is queried with the vendored
// MiniSearch. Results are shown as the service's search page shows them.
(function () {
  var main = document.querySelector("main");
  var query = (new URLSearchParams(window.location.search).get("q") || "").trim();
  document.querySelectorAll("input[name=q]").forEach(function (input) { input.value = query; });
  if (!query) { return; }
  document.title = query + " · search · " + document.title.split(" · ").pop();

  function show(nodes) {
    // Everything after the page's heading is the service's "type a few words" text: replaced.
    var heading = main.querySelector("h1");
    while (heading.nextSibling) { main.removeChild(heading.nextSibling); }
    nodes.forEach(function (node) { main.appendChild(node); });
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function quoted(before, after) {
    var p = element("p", "result-count");
    p.appendChild(document.createTextNode(before));
    p.appendChild(element("q", null, query));
    if (after) { p.appendChild(document.createTextNode(after)); }
    return p;
  }

  fetch("search-index.json").then(function (response) {
    if (!response.ok) { throw new Error("search-index.json: " + response.status); }
    return response.json();
  }).then(function (data) {
    var search = MiniSearch.loadJSON(JSON.stringify(data.index), data.options);
    var results = search.search(query, data.options.searchOptions).slice(0, 10);
    if (!results.length) {
      var none = quoted("No answer matches ", ". Try other words, or ");
      var all = element("a", null, "browse every question");
      all.href = "index.html";
      none.className = "";
      none.appendChild(all);
      none.appendChild(document.createTextNode("."));
      show([none]);
      return;
    }
    var list = element("ol", "results");
    results.forEach(function (hit) {
      var item = element("li");
      var link = element("a", null, hit.title);
      link.href = "a/" + encodeURIComponent(hit.id) + ".html";
      item.appendChild(link);
      item.appendChild(element("p", "snippet", hit.summary));
      list.appendChild(item);
    });
    var count = results.length + " answer" + (results.length === 1 ? "" : "s") + " for ";
    show([quoted(count), list]);
  }).catch(function (error) {
    show([element("p", "error-reason", "Search is not available: " + error.message +
                  ". Every answer is listed on the home page.")]);
  });
})();
