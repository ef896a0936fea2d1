(function () {
  "use strict";
  var link = document.getElementById("open-in-window");
  if (!link) { return; }
  var opened = null;
  var response = null;
  link.addEventListener("click", function (event) {
    opened = window.open(link.href, "_blank");
    if (opened) { event.preventDefault(); }  // else the link opens it, without the relay
    var note = document.getElementById("opened-in-window");
    if (note) { note.hidden = false; }
  });
  // The window this page opened hands back a deep-linking answer for the LMS (autopost.js),
  // which must arrive in this frame, where the LMS asked for it. Two steps, so that only one
  // of the two windows ever posts it: this page claims it, the window confirms it has not
  // posted it itself meanwhile, then this page posts it.
  function relay(event) {
    if (!opened || event.source !== opened || event.origin !== window.location.origin) { return; }
    var data = event.data || {};
    if (data.subject === "pathways.deep_link_response" && response === null) {
      if (typeof data.action !== "string" || !/^https?:\/\//i.test(data.action)) { return; }
      response = data;
      opened.postMessage({ subject: "pathways.deep_link_claim" }, window.location.origin);
    } else if (data.subject === "pathways.deep_link_confirmed" && response !== null) {
      window.removeEventListener("message", relay);
      var form = document.createElement("form");
      form.method = "post";
      form.action = response.action;
      Object.keys(response.fields || {}).forEach(function (name) {
        var input = document.createElement("input");
        input.type = "hidden";
        input.name = name;
        input.value = String(response.fields[name]);
        form.appendChild(input);
      });
      document.body.appendChild(form);
      form.submit();
    }
  }
  window.addEventListener("message", relay);
})();
