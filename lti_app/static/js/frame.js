// Ask the LMS to size its frame to our content (Canvas, Moodle and others listen for this),
// make links to places on the page move the LMS's page, and carry the launch token on fetch()
// calls so in-frame requests need no cookie.
(function () {
  "use strict";
  var last = 0;
  function resize() {
    var height = Math.ceil(document.documentElement.scrollHeight);
    if (height !== last && window.parent !== window) {
      last = height;
      window.parent.postMessage({ subject: "lti.frameResize", height: height }, "*");
    }
  }
  window.addEventListener("load", resize);
  if (window.ResizeObserver) {
    new ResizeObserver(resize).observe(document.body);
  }
  // A link to a place on this page (the "On this page" links, the skip link, "the mastery column
  // of …") moves nothing in the LMS: the LMS sizes its frame to the whole page, so only the
  // LMS's own page could scroll, and a browser does not scroll a page for a jump inside a frame
  // from another site. scrollIntoView() from script does scroll it.
  function jumpWithinFrame(event) {
    if (window.parent === window || event.defaultPrevented || event.button !== 0 ||
        event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    var link = event.target.closest ? event.target.closest("a[href^='#']") : null;
    if (!link) {
      return;
    }
    var id = link.getAttribute("href").slice(1);
    try {
      id = decodeURIComponent(id);
    } catch (ignored) {
      return;
    }
    var target = id ? document.getElementById(id) : null;
    if (!target) {
      return;
    }
    event.preventDefault();
    target.scrollIntoView({ block: "start" });
    // Keyboard and screen-reader users continue from the place they jumped to, as after a jump.
    if (!target.hasAttribute("tabindex") && !/^(A|BUTTON|INPUT|SELECT|TEXTAREA)$/.test(target.tagName)) {
      target.setAttribute("tabindex", "-1");
    }
    target.focus({ preventScroll: true });
  }
  document.addEventListener("click", jumpWithinFrame);
  // A page answered to the launch's POST: the history entry gets the page's GET address, so
  // Back from the next page comes here instead of the browser's form-resubmission error.
  var historyUrl = document.body.getAttribute("data-history-url");
  if (historyUrl && window.history && window.history.replaceState) {
    window.history.replaceState(window.history.state, "", historyUrl);
  }
  var tokenInput = document.querySelector("input[name=lt]");
  if (tokenInput && window.fetch) {
    var originalFetch = window.fetch;
    window.fetch = function (input, init) {
      init = init || {};
      init.headers = new Headers(init.headers || {});
      if (!init.headers.has("X-Launch-Token")) {
        init.headers.set("X-Launch-Token", tokenInput.value);
      }
      return originalFetch(input, init);
    };
  }
})();
