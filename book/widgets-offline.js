// Loaded after require.js and before the widget manager (see nb_ipywidgets_js in _config.yml).
// The manager's bundled modules (@jupyter-widgets/base, controls, output, html-manager) locate their fonts
// relative to their AMD module names; map every such name to our own copy in _static/html-manager, where
// the fonts are, so nothing is fetched from a CDN or from a wrong relative path (e.g. notebooks/@jupyter-widgets/).
(function () {
  var here = document.currentScript.src;
  var staticDir = here.slice(0, here.lastIndexOf("/") + 1);
  require.config({ paths: {
    "@jupyter-widgets/html-manager/dist": staticDir + "html-manager",
    "@jupyter-widgets": staticDir + "html-manager",
  } });
})();
