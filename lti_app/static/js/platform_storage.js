// LTI Client Side postMessages (Platform Storage): keep the login's browser secret in the
// platform's storage so a launch works when the browser blocks third-party cookies.
// https://www.imsglobal.org/spec/lti-cs-oidc/v0p1 — Canvas's mobile apps send
// lti_storage_target but never answer, so every wait has a timeout and a fallback.
(function () {
  "use strict";
  var el = document.getElementById("lti-storage");
  if (!el) { return; }
  var targetName = el.dataset.target;
  // The platform's origin as the browser writes it (Pathways normalises the registered URL):
  // only that window may hear the login's secret, never "*".
  var origin = el.dataset.origin;
  var targetWindow = null;
  try {
    targetWindow = targetName === "_parent" ? window.parent : window.parent.frames[targetName];
  } catch (e) { targetWindow = null; }
  if (!targetWindow || targetWindow === window) { targetWindow = window.parent; }

  function ask(message, timeoutMs) {
    if (!origin) { return Promise.reject(new Error("no platform origin")); }
    return new Promise(function (resolve, reject) {
      var id = "pw-" + Math.random().toString(36).slice(2);
      message.message_id = id;
      var timer = setTimeout(function () {
        window.removeEventListener("message", onMessage);
        reject(new Error("timeout"));
      }, timeoutMs);
      function onMessage(event) {
        if (event.origin !== origin) { return; }
        var data = event.data || {};
        if (data.message_id !== id) { return; }
        clearTimeout(timer);
        window.removeEventListener("message", onMessage);
        if (data.error) { reject(new Error(data.error.code || "error")); } else { resolve(data); }
      }
      window.addEventListener("message", onMessage);
      targetWindow.postMessage(message, origin);
    });
  }

  function supports(subject) {
    return ask({ subject: "lti.capabilities" }, 1500).then(function (data) {
      var ok = (data.supported_messages || []).some(function (m) { return m.subject === subject; });
      if (!ok) { throw new Error("unsupported"); }
    });
  }

  // A put_data without a value removes the key (Canvas, D2L): Canvas keeps what a tool puts
  // in the browser's localStorage, so every login would otherwise leave its secret there.
  function forget() {
    return ask({ subject: "lti.put_data", key: el.dataset.key }, 1000);
  }

  if (el.dataset.mode === "clear") {
    supports("lti.put_data").then(forget).catch(function () { /* nothing kept, or no answer */ });
  } else if (el.dataset.mode === "put") {
    // replace(): Back from Pathways must not come to this page, which would log in again.
    var go = function () { window.location.replace(el.dataset.authUrl); };
    // No answer: the state cookie set with this page is the fallback, checked first (the
    // login's check page) where the browser may have refused it.
    var fallBack = function () {
      window.location.replace(el.dataset.fallbackUrl || el.dataset.authUrl);
    };
    supports("lti.put_data")
      .then(function () {
        return ask({ subject: "lti.put_data", key: el.dataset.key, value: el.dataset.value }, 1500);
      })
      .then(go, fallBack);
  } else {
    var form = el;
    supports("lti.get_data")
      .then(function () { return ask({ subject: "lti.get_data", key: el.dataset.key }, 1500); })
      .then(function (data) {
        // Nothing stored (the put was refused, e.g. storage_exhaustion): posting an empty
        // secret would only bring this page back.
        if (!data.value) { throw new Error("nothing stored"); }
        form.querySelector("input[name=lti_storage_secret]").value = data.value;
        var submit = function () {
          // This page answered the LMS's form POST and stays in the history: Back from
          // Pathways would send that form again (the browser's resubmission error). A GET
          // address that says where the history is takes its place.
          if (el.dataset.startedUrl && window.history.replaceState) {
            window.history.replaceState(null, "", el.dataset.startedUrl);
          }
          form.submit();
        };
        forget().then(submit, submit);
      })
      .catch(function () {
        document.getElementById("lti-storage-failed").hidden = false;
      });
  }
})();
