// A page with several forms sends only the one whose button is pressed: a student who typed
// their interests and then pressed "Add goal", or half wrote one step's hand-in note and then
// pressed another step's "Start this work", got the page back showing those other forms as
// last saved, and what they had typed was gone without a word. So, when one form is sent,
// what was typed and not saved in the others is kept in this tab and put back into the same
// forms of the page that comes back (the page after the save, or the refusal), with a note.
// No "Leave this page?" question instead: in an LMS's frame it stops every move in the LMS.
(function () {
  "use strict";
  var launchKey = document.body.getAttribute("data-launch-key");
  if (!launchKey) {
    return;
  }
  var store = null;
  try {
    store = window.sessionStorage;
  } catch (ignored) {
    // Denied in a frame from another site when third-party cookies are blocked: a partitioned
    // cookie instead, which lives only until the page after the save reads it.
  }
  // Per launch session: the same tab may hold someone else's launch later (a shared computer),
  // and their page must never fill in what this person typed.
  var KEPT = "pathways.unsaved.";
  var keptKey = KEPT + launchKey;
  var COOKIE = "pathways_unsaved_";
  var cookieName = COOKIE + launchKey;
  // Every request carries the cookie until the next page reads it: well below the 8 kB a
  // server takes for all of them together.
  var COOKIE_MAX = 3000;
  // Fields the page fills in itself (the launch token, CSRF token, form nonce) and secrets.
  var NEVER_KEPT = /^(lt|csrf_token|form_shown|nonce|shown|shown_at|admin_secret|access_code|id_token|state)$/;
  var NOT_TYPED = /^(hidden|file|password|submit|button|reset|image)$/;

  function cookieValue(name) {
    var cookies = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < cookies.length; i++) {
      if (cookies[i].indexOf(name + "=") === 0) {
        return cookies[i].slice(name.length + 1);
      }
    }
    return null;
  }
  function setCookie(name, value, seconds) {
    document.cookie = name + "=" + value + "; Path=/; Max-Age=" + seconds +
      "; SameSite=None; Secure; Partitioned";
  }
  function read() {
    try {
      var text = store ? store.getItem(keptKey) : decodeURIComponent(cookieValue(cookieName) || "");
      var kept = JSON.parse(text || "{}");
      return kept && typeof kept === "object" ? kept : {};
    } catch (ignored) {
      return {};
    }
  }
  // Whether what is to be kept is kept (not when storage is full or refused).
  function write(kept) {
    var empty = !Object.keys(kept).length;
    var text = JSON.stringify(kept);
    if (store) {
      try {
        if (empty) {
          store.removeItem(keptKey);
        } else {
          store.setItem(keptKey, text);
        }
        return true;
      } catch (ignored) {
        return empty;
      }
    }
    var value = encodeURIComponent(text);
    if (empty || value.length > COOKIE_MAX) {
      setCookie(cookieName, "", 0);
      return empty;
    }
    setCookie(cookieName, value, 600);  // read by the very next page; never left for long
    return cookieValue(cookieName) === value;
  }
  function forgetOtherLaunches() {
    // A launch earlier in this tab (someone else's, another course's) keeps nothing here.
    if (store) {
      for (var i = store.length - 1; i >= 0; i--) {
        var name = store.key(i);
        if (name && name.indexOf(KEPT) === 0 && name !== keptKey) {
          store.removeItem(name);
        }
      }
      return;
    }
    var cookies = document.cookie ? document.cookie.split("; ") : [];
    for (var j = 0; j < cookies.length; j++) {
      var cookie = cookies[j].split("=")[0];
      if (cookie.indexOf(COOKIE) === 0 && cookie !== cookieName) {
        setCookie(cookie, "", 0);
      }
    }
  }

  // A form is known by the address it sends to (without the launch token, which changes) and
  // its place among the page's forms to that address.
  function formsByKey() {
    var found = {};
    var seen = {};
    for (var i = 0; i < document.forms.length; i++) {
      var form = document.forms[i];
      var path = new URL(form.getAttribute("action") || "", window.location.href).pathname;
      seen[path] = (seen[path] || 0) + 1;
      found[path + "#" + seen[path]] = form;
    }
    return found;
  }
  function isTyped(el) {
    return !!el.name && !NEVER_KEPT.test(el.name) && /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName) &&
      !(el.tagName === "INPUT" && NOT_TYPED.test(el.type));
  }
  function ticks(el) {
    return el.type === "checkbox" || el.type === "radio";
  }
  function typedFields(form) {
    var fields = [];
    var seen = {};
    for (var i = 0; i < form.elements.length; i++) {
      var el = form.elements[i];
      if (!isTyped(el)) {
        continue;
      }
      var name = ticks(el) ? el.name + "=" + el.value : el.name;
      seen[name] = (seen[name] || 0) + 1;
      fields.push({ key: name + "#" + seen[name], el: el });
    }
    return fields;
  }
  function selected(select, asShown) {
    var values = [];
    for (var i = 0; i < select.options.length; i++) {
      var option = select.options[i];
      if (asShown ? option.defaultSelected : option.selected) {
        values.push(option.value);
      }
    }
    if (asShown && !values.length && !select.multiple && select.options.length) {
      values.push(select.options[0].value);  // what a browser shows when none is marked
    }
    return values;
  }
  // What the page showed (its HTML), and what is in the field now.
  function shownIn(el) {
    return ticks(el) ? el.defaultChecked : el.tagName === "SELECT" ? selected(el, true) : el.defaultValue;
  }
  function nowIn(el) {
    return ticks(el) ? el.checked : el.tagName === "SELECT" ? selected(el, false) : el.value;
  }
  function same(a, b) {
    return JSON.stringify(a) === JSON.stringify(b);
  }
  function put(el, value) {
    if (ticks(el)) {
      el.checked = value === true;
    } else if (el.tagName === "SELECT") {
      for (var i = 0; i < el.options.length; i++) {
        el.options[i].selected = value.indexOf(el.options[i].value) !== -1;
      }
    } else {
      el.value = String(value);
    }
    // Page scripts that follow a field (a "Select all" box) see the change as if typed.
    el.dispatchEvent(new Event("input", { bubbles: true }));
    el.dispatchEvent(new Event("change", { bubbles: true }));
  }

  var typedIn = [];
  function noteTyping(event) {
    var form = event.target && event.target.form;
    if (form && typedIn.indexOf(form) === -1) {
      typedIn.push(form);
    }
  }
  document.addEventListener("input", noteTyping);
  document.addEventListener("change", noteTyping);

  function keepTheOthers(event) {
    var sent = event.target;
    if (event.defaultPrevented || !sent || sent.tagName !== "FORM") {
      return;
    }
    var target = sent.getAttribute("target");
    if (target && target !== "_self") {
      return;  // another window opens; this page, with what is typed in it, stays
    }
    var kept = read();
    var page = window.location.pathname;
    var forms = kept[page] || {};
    var all = formsByKey();
    var unsaved = [];
    Object.keys(all).forEach(function (key) {
      var form = all[key];
      delete forms[key];  // the form sent is saved now, and the others are kept as they are now
      if (form === sent || typedIn.indexOf(form) === -1) {
        return;
      }
      var fields = {};
      typedFields(form).forEach(function (field) {
        var shown = shownIn(field.el);
        var now = nowIn(field.el);
        if (!same(shown, now)) {
          fields[field.key] = { shown: shown, typed: now };
        }
      });
      if (Object.keys(fields).length) {
        forms[key] = fields;
        unsaved.push(form);
      }
    });
    if (Object.keys(forms).length) {
      kept[page] = forms;
    } else {
      delete kept[page];
    }
    if (!write(kept) && askedAbout !== sent) {
      event.preventDefault();
      askedAbout = sent;
      sayNotKept(sent, unsaved);
    }
  }
  // Nowhere to keep it (storage refused, or too much typed for a cookie): say so, once, before
  // it is lost; the same button pressed again sends the form all the same.
  var askedAbout = null;
  function sayNotKept(sent, unsaved) {
    var old = document.getElementById("unsaved-elsewhere");
    if (old) {
      old.parentNode.removeChild(old);
    }
    var note = document.createElement("p");
    note.id = "unsaved-elsewhere";
    note.className = "flash flash-error";
    note.setAttribute("role", "alert");
    note.textContent = "Not sent yet: your changes in " + unsaved.map(function (form) {
      return "“" + nameOf(form) + "”";
    }).join(", ") + " are not saved, and would be lost. Save them first, or press the " +
      "button again to send this form without them.";
    sent.insertBefore(note, firstPlaceIn(sent));
    note.scrollIntoView({ block: "nearest" });
  }
  // On the window, so it runs after the page's own handlers, which may stop the sending.
  window.addEventListener("submit", keepTheOthers);

  function textOf(el) {
    return el ? el.textContent.replace(/\s+/g, " ").trim() : "";
  }
  // How the note names a form: its own heading ("Hand in your work", with its step), the
  // <summary> it opens under ("Update this goal: …"), or the heading above it ("About me").
  function nameOf(form) {
    var labelledBy = form.getAttribute("aria-labelledby");
    var named = form.getAttribute("aria-label") ||
      (labelledBy ? textOf(document.getElementById(labelledBy)) : "");
    if (named) {
      return named;
    }
    var own = form.querySelector("h1, h2, h3, h4, h5, h6");
    if (own) {
      var section = form.parentElement && form.parentElement.closest("section[aria-labelledby]");
      var sectionName = section ? textOf(document.getElementById(section.getAttribute("aria-labelledby"))) : "";
      return textOf(own) + (sectionName ? " (" + sectionName + ")" : "");
    }
    var details = form.closest("details");
    var summary = details ? details.querySelector("summary") : null;
    if (summary && summary.parentNode === details) {
      return textOf(summary);
    }
    var headings = document.querySelectorAll("main h1, main h2, main h3, main h4");
    for (var i = headings.length - 1; i >= 0; i--) {
      if (headings[i].compareDocumentPosition(form) & Node.DOCUMENT_POSITION_FOLLOWING) {
        return textOf(headings[i]);
      }
    }
    return "another form on this page";
  }
  // Where a note goes in a form: below its heading, above its first field.
  function firstPlaceIn(form) {
    for (var child = form.firstElementChild; child; child = child.nextElementSibling) {
      if (!(child.tagName === "INPUT" && child.type === "hidden") && !/^H[1-6]$/.test(child.tagName)) {
        return child;
      }
    }
    return null;
  }
  function sayKept(form, fields, n) {
    var note = document.createElement("p");
    note.className = "kept-note";
    note.id = "kept-note-" + n;
    note.textContent = "Your unsaved changes in “" + nameOf(form) + "” were kept. " +
      "They are not saved yet.";
    form.insertBefore(note, firstPlaceIn(form));
    // Heard again on reaching a field put back, where a screen-reader user meets it.
    fields.forEach(function (el) {
      var described = el.getAttribute("aria-describedby");
      el.setAttribute("aria-describedby", note.id + (described ? " " + described : ""));
    });
    for (var open = form.closest("details"); open; open = open.parentElement.closest("details")) {
      open.open = true;  // "Update this goal" with the changes inside, shut, would hide them
    }
  }

  function putBack() {
    forgetOtherLaunches();
    var kept = read();
    var page = window.location.pathname;
    var forms = kept[page];
    if (!forms) {
      return;
    }
    delete kept[page];  // put back once: a later visit to the page shows what is saved
    write(kept);
    var all = formsByKey();
    var n = 0;
    Object.keys(forms).forEach(function (key) {
      var form = all[key];
      var stored = forms[key];
      if (!form || !stored || typeof stored !== "object") {
        return;
      }
      var filled = [];
      typedFields(form).forEach(function (field) {
        var entry = stored[field.key];
        // Only where the page still shows what it showed then: a save made meanwhile (by a
        // teacher, in another tab) is not overwritten with older typing.
        if (entry && same(shownIn(field.el), entry.shown) && !same(nowIn(field.el), entry.typed)) {
          put(field.el, entry.typed);
          filled.push(field.el);
        }
      });
      if (filled.length) {
        if (typedIn.indexOf(form) === -1) {
          typedIn.push(form);  // still unsaved: kept again if yet another form is sent
        }
        sayKept(form, filled, ++n);
      }
    });
  }
  putBack();
})();
