(function () {
  "use strict";
  var link = document.getElementById("open-in-window");
  if (!link) { return; }
  link.addEventListener("click", function () {
    var opened = document.getElementById("opened-in-window");
    if (opened) { opened.hidden = false; }
  });
  // The window this page opened hands back a deep-linking answer for the LMS (autopost.js),
  // which must arrive in this frame, where the LMS asked for it.
  window.addEventListener("message", function (event) {
    if (event.origin !== window.location.origin || !event.source) { return; }
    var data = event.data;
    if (!data || data.subject !== "pathways.deep_link_response") { return; }
    if (typeof data.action !== "string" || !/^https?:\/\//i.test(data.action)) { return; }
    event.source.postMessage({ subject: "pathways.deep_link_received" }, window.location.origin);
    var form = document.createElement("form");
    form.method = "post";
    form.action = data.action;
    Object.keys(data.fields || {}).forEach(function (name) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = String(data.fields[name]);
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
  });
})();
