(function () {
  "use strict";
  var form = document.querySelector("form[data-autosubmit]");
  if (!form) { return; }
  if (!form.hasAttribute("data-relay") || !openedByPathways()) {
    form.submit();
    return;
  }
  // Opened from Pathways' "open in a new window" page in the LMS's frame (a browser that
  // keeps no cookie there): the LMS takes a deep-linking answer only in the frame that asked
  // (Moodle's contentitem_return.js hands it to its parent), so that page posts it there.
  // If it does not claim the answer in time (closed meanwhile), post it from here; once
  // claimed and confirmed, only that page posts it.
  var opener = window.opener;
  var fields = {};
  Array.prototype.forEach.call(form.querySelectorAll("input[type=hidden]"), function (input) {
    fields[input.name] = input.value;
  });
  var stage = "offered";
  window.addEventListener("message", function (event) {
    if (event.origin !== window.location.origin || event.source !== opener) { return; }
    if (!event.data || event.data.subject !== "pathways.deep_link_claim") { return; }
    if (stage !== "offered") { return; }
    stage = "handed over";
    opener.postMessage({ subject: "pathways.deep_link_confirmed" }, window.location.origin);
    form.hidden = true;
    var done = document.getElementById("handed-to-the-course");
    if (done) { done.hidden = false; }
    window.close();  // browsers may refuse: the message above says what to do
  });
  opener.postMessage(
    { subject: "pathways.deep_link_response", action: form.getAttribute("action"), fields: fields },
    window.location.origin
  );
  window.setTimeout(function () {
    if (stage === "offered") { stage = "posted here"; form.submit(); }
  }, 1500);

  function openedByPathways() {
    try {
      var page = window.opener;
      return Boolean(page) && page !== window && !page.closed &&
        page.location.origin === window.location.origin;
    } catch (e) {
      return false;  // another site's page (the LMS opened this window): not ours to ask
    }
  }
})();
