(function () {
  "use strict";
  var form = document.querySelector("form[data-autosubmit]");
  if (!form) { return; }
  var opener = null;
  try { opener = window.opener; } catch (e) { opener = null; }
  if (!opener || opener === window || !form.hasAttribute("data-relay")) {
    form.submit();
    return;
  }
  // Opened from Pathways' "open in a new window" page in the LMS's frame (a browser that
  // keeps no cookie there): the LMS takes a deep-linking answer only in the frame that asked
  // (Moodle's contentitem_return.js hands it to its parent), so that page posts it there.
  // If no page of ours answers (the LMS itself opened this window), post it from here.
  var fields = {};
  Array.prototype.forEach.call(form.querySelectorAll("input[type=hidden]"), function (input) {
    fields[input.name] = input.value;
  });
  var handedOver = false;
  window.addEventListener("message", function (event) {
    if (event.origin !== window.location.origin || event.source !== opener) { return; }
    if (!event.data || event.data.subject !== "pathways.deep_link_received") { return; }
    handedOver = true;
    form.hidden = true;
    var done = document.getElementById("handed-to-the-course");
    if (done) { done.hidden = false; }
    window.close();  // browsers may refuse: the message above says what to do
  });
  opener.postMessage(
    { subject: "pathways.deep_link_response", action: form.getAttribute("action"), fields: fields },
    window.location.origin
  );
  window.setTimeout(function () { if (!handedOver) { form.submit(); } }, 1500);
})();
