// Loaded after require.js and before the widget manager (see nb_ipywidgets_js in _config.yml).
// The manager locates its fonts relative to its AMD module name; map that name to our own copy in
// _static/html-manager so nothing is fetched from a CDN or from a wrong relative path.
(function () {
  var here = document.currentScript.src;
  var staticDir = here.slice(0, here.lastIndexOf("/") + 1);
  require.config({ paths: { "@jupyter-widgets/html-manager/dist": staticDir + "html-manager" } });
})();
