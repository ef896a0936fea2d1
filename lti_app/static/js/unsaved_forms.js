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
  // A browser keeps a cookie of at most 4096 bytes, name and value together; and the page's
  // request carries it next to the launch's own cookies.
  var COOKIE_MAX = 3900;
  // Fields the page fills in itself (the launch token, CSRF token, form nonce) and secrets.
  var NEVER_KEPT = /^(lt|csrf_token|form_shown|nonce|shown|shown_at|admin_secret|access_code|id_token|state)$/;
  var NOT_TYPED = /^(hidden|file|password|submit|button|reset|image)$/;
  // Hidden fields that say which thing a form is about: the goal, competency or step of the
  // forms that send to one and the same address.
  var NAMES_A_THING = /(^|[_-])id$|^(step|competency|choice|option|direction)$/;

  // A cookie's value takes only printable ASCII without ; , " \ and space. The typed words
  // of most of the world are not ASCII, and encodeURIComponent() spends 9 bytes on each
  // Chinese character: runs of such characters go as base64 of their UTF-16 (under 3 bytes
  // each) between two "~", the rest as encodeURIComponent() writes it.
  function toCookie(text) {
    return text.split(/([^\x00-\x7f]+)/).map(function (part, i) {
      if (i % 2 === 0) {
        return encodeURIComponent(part).replace(/~/g, "%7E");
      }
      var bytes = "";
      for (var j = 0; j < part.length; j++) {
        var unit = part.charCodeAt(j);
        bytes += String.fromCharCode(unit >> 8, unit & 255);
      }
      return "~" + btoa(bytes) + "~";
    }).join("");
  }
  function fromCookie(value) {
    return value.split(/~([^~]*)~/).map(function (part, i) {
      if (i % 2 === 0) {
        return decodeURIComponent(part);
      }
      var bytes = atob(part);
      var text = "";
      for (var j = 0; j + 1 < bytes.length; j += 2) {
        text += String.fromCharCode((bytes.charCodeAt(j) << 8) | bytes.charCodeAt(j + 1));
      }
      return text;
    }).join("");
  }
  function cookieValues(name) {
    var values = [];
    var cookies = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < cookies.length; i++) {
      if (cookies[i].indexOf(name + "=") === 0) {
        values.push(cookies[i].slice(name.length + 1));
      }
    }
    return values;
  }
  // For this page only, and for this browser session only: no other page's request, nor a
  // static file's, nor the next launch's, carries what was typed, and a closed browser forgets it.
  function setCookie(name, value, path) {
    document.cookie = name + "=" + value + "; Path=" + path + (value ? "" : "; Max-Age=0") +
      "; SameSite=None; Secure; Partitioned";
  }
  function read() {
    try {
      if (store) {
        var kept = JSON.parse(store.getItem(keptKey) || "{}");
        return kept && typeof kept === "object" ? kept : {};
      }
    } catch (ignored) {
      return {};
    }
    // Each page's own cookie; a page under another (/profile/goals under /profile/) sees both.
    var all = {};
    cookieValues(cookieName).forEach(function (value) {
      try {
        var one = JSON.parse(fromCookie(value));
        Object.keys(one && typeof one === "object" ? one : {}).forEach(function (page) {
          all[page] = all[page] || one[page];
        });
      } catch (ignored) {
        // Not ours, or cut short: nothing to put back from it.
      }
    });
    return all;
  }
  // Whether what is to be kept is kept (not when storage is full or refused). In a cookie,
  // only this page's forms are kept: no other page reads them.
  function write(kept, page) {
    var empty = !Object.keys(kept).length;
    if (store) {
      try {
        if (empty) {
          store.removeItem(keptKey);
        } else {
          store.setItem(keptKey, JSON.stringify(kept));
        }
        return true;
      } catch (ignored) {
        return empty;
      }
    }
    var mine = {};
    if (kept[page]) {
      mine[page] = kept[page];
    }
    var value = kept[page] ? toCookie(JSON.stringify(mine)) : "";
    if (!value || cookieName.length + 1 + value.length > COOKIE_MAX) {
      setCookie(cookieName, "", page);
      return !value;
    }
    setCookie(cookieName, value, page);
    return cookieValues(cookieName).indexOf(value) !== -1;
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
    // A cookie seen here was set for this page or a page above it.
    var paths = ["/"];
    var parts = window.location.pathname.split("/");
    for (var k = 2; k <= parts.length; k++) {
      var path = parts.slice(0, k).join("/");
      if (path && path !== "/") {
        paths.push(path, path + "/");
      }
    }
    var cookies = document.cookie ? document.cookie.split("; ") : [];
    for (var j = 0; j < cookies.length; j++) {
      var cookie = cookies[j].split("=")[0];
      if (cookie.indexOf(COOKIE) === 0 && cookie !== cookieName) {
        paths.forEach(function (path) { setCookie(cookie, "", path); });
      }
    }
  }

  // A form is known by the address it sends to (without the launch token, which changes) and
  // the thing it is about: every goal's form on a student's page sends to one address, and
  // one deleted moves the others up, so a place among them would put goal 2's typing into
  // goal 3. A form may name itself (data-keep-key); forms alike in all of this, by their order.
  function formsByKey() {
    var found = {};
    var seen = {};
    for (var i = 0; i < document.forms.length; i++) {
      var form = document.forms[i];
      var key = form.getAttribute("data-keep-key");
      if (!key) {
        key = new URL(form.getAttribute("action") || "", window.location.href).pathname;
        for (var j = 0; j < form.elements.length; j++) {
          var el = form.elements[j];
          if (el.type === "hidden" && NAMES_A_THING.test(el.name)) {
            key += " " + el.name + "=" + el.value;
          }
        }
      }
      seen[key] = (seen[key] || 0) + 1;
      found[key + "#" + seen[key]] = form;
    }
    return found;
  }
  // What the page showed in a field is kept as a short fingerprint: it is only compared.
  function fingerprint(value) {
    var text = JSON.stringify(value);
    var hash = 0x811c9dc5;
    for (var i = 0; i < text.length; i++) {
      hash ^= text.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193);
    }
    return (hash >>> 0).toString(36);
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
          fields[field.key] = [fingerprint(shown), now];
        }
      });
      if (Object.keys(fields).length) {
        // Named, to say whose typing it was if the form is gone from the page that comes back.
        forms[key] = { name: nameOf(form).slice(0, 80), fields: fields };
        unsaved.push(form);
      }
    });
    if (Object.keys(forms).length) {
      kept[page] = forms;
    } else {
      delete kept[page];
    }
    if (!write(kept, page) && askedAbout !== sent) {
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
    note.setAttribute("role", "status");
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
  // The save's confirmation is what frame.js shows and focuses, next to the place saved,
  // often far from the forms put back: it says so too.
  function confirmationSays(words) {
    var confirmation = document.querySelector("#main > p.flash[role=status]");
    if (confirmation) {
      var more = document.createElement("span");
      more.textContent = " " + words;
      confirmation.appendChild(more);
    }
  }
  // Goals' forms are all named by the "Goals" heading above them: the name once.
  function once(names) {
    return names.filter(function (name, i) { return names.indexOf(name) === i; });
  }
  // Typing that could not be put back (its form is gone, or shows something else now) is
  // shown for copying rather than lost without a word. A notice of the page's, so frame.js
  // moves it next to the place saved with the confirmation.
  function sayNotPutBack(lost) {
    var main = document.getElementById("main");
    if (!main || !lost.length) {
      return;
    }
    var note = document.createElement("p");
    note.id = "unsaved-not-put-back";
    note.className = "flash flash-error";
    note.setAttribute("role", "status");
    note.appendChild(document.createTextNode("Your unsaved changes in " + once(lost.map(function (one) {
      return "“" + one.name + "”";
    })).join(", ") + " could not be put back: that form is gone from this page, or shows " +
      "something saved meanwhile. What you had typed, to copy:"));
    lost.forEach(function (one) {
      Object.keys(one.fields).forEach(function (key) {
        var typed = one.fields[key][1];
        if (typeof typed === "string" && typed.trim()) {
          var text = document.createElement("span");
          text.className = "kept-text";
          text.setAttribute("dir", "auto");
          text.textContent = typed;
          note.appendChild(text);
        }
      });
    });
    var flashes = main.querySelectorAll("#main > p.flash");
    var after = flashes.length ? flashes[flashes.length - 1].nextSibling : main.firstChild;
    main.insertBefore(note, after);
  }

  // All of a form's typing or none: a field put back among fields that show a save made
  // meanwhile (by a teacher, in another tab) would mix older typing into the newer save.
  function putBackInto(form, stored) {
    var fields = typedFields(form);
    var byKey = {};
    fields.forEach(function (field) {
      byKey[field.key] = field.el;
    });
    var keys = Object.keys(stored);
    for (var i = 0; i < keys.length; i++) {
      var el = byKey[keys[i]];
      var entry = stored[keys[i]];
      if (!el || !Array.isArray(entry) || fingerprint(shownIn(el)) !== entry[0]) {
        return null;
      }
    }
    var filled = [];
    keys.forEach(function (key) {
      if (!same(nowIn(byKey[key]), stored[key][1])) {
        put(byKey[key], stored[key][1]);
        filled.push(byKey[key]);
      }
    });
    return filled;
  }

  function putBack() {
    forgetOtherLaunches();
    var kept = read();
    var page = window.location.pathname;
    var forms = kept[page];
    if (!forms || typeof forms !== "object") {
      return;
    }
    delete kept[page];  // put back once: a later visit to the page shows what is saved
    write(kept, page);
    var all = formsByKey();
    var named = [];
    var lost = [];
    Object.keys(forms).forEach(function (key) {
      var stored = forms[key];
      if (!stored || typeof stored.fields !== "object") {
        return;
      }
      var form = all[key];
      var filled = form ? putBackInto(form, stored.fields) : null;
      if (!filled) {
        lost.push({ name: String(stored.name || "another form on this page"), fields: stored.fields });
      } else if (filled.length) {
        if (typedIn.indexOf(form) === -1) {
          typedIn.push(form);  // still unsaved: kept again if yet another form is sent
        }
        sayKept(form, filled, named.length + 1);
        named.push("“" + nameOf(form) + "”");
      }
    });
    if (named.length) {
      confirmationSays("Your unsaved changes in " + once(named).join(", ") + " were kept, not saved yet.");
    }
    sayNotPutBack(lost);
  }
  putBack();
})();
