// Ask the LMS to size its frame to our content (Canvas, Moodle and others listen for this),
// show each new page where it should start (its error, the place its address names, or its
// top), make links to places on the page move the LMS's page, carry the launch token on fetch()
// calls so in-frame requests need no cookie, and keep that token fresh while the page is open.
(function () {
  "use strict";
  var framed = window.parent !== window;
  var initialHash = window.location.hash;  // before replaceState below gives the GET address
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
  function elementNamedBy(hash) {
    var id = hash.charAt(0) === "#" ? hash.slice(1) : hash;
    try {
      id = decodeURIComponent(id);
    } catch (ignored) {
      return null;
    }
    return id ? document.getElementById(id) : null;
  }
  function bringIntoView(target) {
    target.scrollIntoView({ block: "start" });
    // Keyboard and screen-reader users continue from the place they jumped to, as after a jump.
    if (!target.hasAttribute("tabindex") && !/^(A|BUTTON|INPUT|SELECT|TEXTAREA)$/.test(target.tagName)) {
      target.setAttribute("tabindex", "-1");
    }
    target.focus({ preventScroll: true });
  }
  // "Go to the field" in a refused form's error summary: a field brought to the very top of the
  // window (as a jump does, framed or not) has its label out of sight above it, and a
  // fieldset's legend sticks out above its top edge. So what names the field comes into view
  // first, the field just below it, and only then does the field take focus.
  var FIELD = /^(INPUT|SELECT|TEXTAREA|FIELDSET)$/;
  function nameAbove(field) {
    if (field.tagName === "FIELDSET") {
      return field.querySelector("legend") || field;
    }
    var label = field.id && window.CSS && CSS.escape ?
      document.querySelector("label[for='" + CSS.escape(field.id) + "']") : null;
    return field.closest(".field") || label || field.closest("label") || field;
  }
  function bringFieldIntoView(field) {
    nameAbove(field).scrollIntoView({ block: "start" });
    if (field.tagName !== "FIELDSET") {  // a tall fieldset would push its legend out again
      field.scrollIntoView({ block: "nearest" });
    } else if (!field.hasAttribute("tabindex")) {
      field.setAttribute("tabindex", "-1");
    }
    field.focus({ preventScroll: true });
  }
  function jumpWithinPage(event) {
    if (event.defaultPrevented || event.button !== 0 ||
        event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    var link = event.target.closest ? event.target.closest("a[href^='#']") : null;
    var target = link ? elementNamedBy(link.getAttribute("href")) : null;
    var field = target && FIELD.test(target.tagName);
    if (!target || (!framed && !field)) {
      return;  // unframed, the browser's own jump to a place is right
    }
    event.preventDefault();
    if (field) {
      bringFieldIntoView(target);
    } else {
      bringIntoView(target);
    }
  }
  document.addEventListener("click", jumpWithinPage);

  // A new page in the frame opens where the LMS's page was left scrolled, often far below the
  // new page's top: the frame is as tall as the page, so it never scrolls itself, the LMS's page
  // does, and a browser scrolls no page for a frame from another site that loads (even with a
  // #fragment). So, once the LMS has sized the frame to this page (or has not within a second),
  // show what the page is about: a refused form's error summary or a "Not saved yet" question
  // (which also take focus, framed or not), else the place the address names (the "What to do
  // next" links, a step after a hand-in), else the page's top, but only if none of it is in
  // sight: a page that starts in view stays still.
  var ASKING = "#error-summary, #locking-students, #losing-mastery";
  // A save's confirmation is at the top of the page, while the page opens at the place the
  // address names (the step chosen, the goal saved), often a screen or more below: there
  // nobody would see it, and a screen reader says only the place. So it moves next to the
  // place, which it describes.
  function rowAbove(row) {
    // A table holds only rows: the notice gets one of its own, as wide as the table, just
    // above the place's row (above the whole table it was screens away from a low row).
    var columns = 0;
    for (var i = 0; i < row.cells.length; i++) {
      columns += row.cells[i].colSpan || 1;
    }
    var holder = document.createElement("tr");
    holder.className = "flash-row";
    var cell = document.createElement("td");
    cell.colSpan = Math.max(columns, 1);
    holder.appendChild(cell);
    row.parentNode.insertBefore(holder, row);
    return cell;
  }
  function confirmAt(target) {
    var main = document.getElementById("main");
    var notices = main ? main.querySelectorAll("#main > p.flash[role=status]") : [];
    if (!notices.length || target === main) {
      return target;
    }
    var row = target.closest("tr");
    var cell = row ? rowAbove(row) : null;
    var inTable = cell ? null : target.closest("table");
    var before = inTable ? (inTable.closest(".table-wrap") || inTable) : target;
    var ids = [];
    for (var i = 0; i < notices.length; i++) {
      var notice = notices[i];
      notice.id = notice.id || "confirmation-" + i;
      ids.push(notice.id);
      if (cell) {
        cell.appendChild(notice);
      } else if (target.tagName === "LI") {
        target.insertBefore(notice, target.firstChild);  // a list holds only its items
      } else {
        before.parentNode.insertBefore(notice, before);
      }
    }
    var described = target.getAttribute("aria-describedby");
    target.setAttribute("aria-describedby", ids.join(" ") + (described ? " " + described : ""));
    return notices[0];
  }
  function showConfirmed(target, shown) {
    bringIntoView(target);
    if (shown && shown !== target) {
      shown.scrollIntoView({ block: "start" });  // the place follows it
    }
  }
  function showPlace() {
    var asking = document.querySelector(ASKING);
    if (asking && !asking.hasAttribute("tabindex")) {
      asking.setAttribute("tabindex", "-1");
    }
    var target = asking ? null : (initialHash ? elementNamedBy(initialHash) : null);
    var shown = target ? confirmAt(target) : null;
    if (!framed) {
      if (asking) {
        asking.focus();  // scrolls this window to it as needed
      } else if (shown && shown !== target) {
        showConfirmed(target, shown);
      }
      return;  // the browser itself shows the top, the #fragment, or where Back left off
    }
    if (asking || target) {
      showConfirmed(asking || target, shown);
      return;
    }
    var top = document.querySelector("header.topbar") || document.body.firstElementChild;
    if (!top || !window.IntersectionObserver) {
      return;
    }
    // With no root given, a frame's element is measured against the top-level page's viewport,
    // even in a frame from another site; the first report says whether it is in sight now.
    var observer = new IntersectionObserver(function (entries) {
      observer.disconnect();
      if (!entries[0].isIntersecting) {
        top.scrollIntoView({ block: "start" });
      }
    });
    observer.observe(top);
  }
  function showPlaceOnceSized() {
    var root = document.documentElement;
    if (!framed || Math.abs(window.innerHeight - root.scrollHeight) <= 2) {
      showPlace();
      return;
    }
    // Scrolling before the LMS resizes the frame would scroll the frame's own document too,
    // and the resize then takes that part back: wait for the new size.
    var done = false;
    var once = function () {
      if (!done) {
        done = true;
        window.removeEventListener("resize", once);
        showPlace();
      }
    };
    window.addEventListener("resize", once);
    window.setTimeout(once, 1000);  // an LMS that keeps its frame's size
  }
  window.addEventListener("load", showPlaceOnceSized);
  // A page answered to the launch's POST: the history entry gets the page's GET address, so
  // Back from the next page comes here instead of the browser's form-resubmission error.
  var historyUrl = document.body.getAttribute("data-history-url");
  if (historyUrl && window.history && window.history.replaceState) {
    window.history.replaceState(window.history.state, "", historyUrl);
  }
  var body = document.body;
  var tokenInput = document.querySelector("input[name=lt]");
  var token = body.getAttribute("data-launch-token") || (tokenInput ? tokenInput.value : "");

  // Pages earlier in the frame's history keep the token they were opened with: Back to one
  // opened longer ago than a token lives was refused ("Your Pathways session has ended") while
  // the launch session lived on and the page just left had renewed its own. So every page
  // keeps its launch session's newest token in this tab, and the refusal page of such a Back
  // (the server names the expired token's launch session) tries once more with it.
  // A browser that blocks third-party cookies (Chrome so set, or in a private window) denies a
  // frame from another site its sessionStorage too, but keeps a Partitioned cookie: there one
  // cookie holds the newest token of the launch last seen (one, so no Cookie header grows).
  var KEPT_TOKEN = "pathways.launch-token.";
  var KEPT_TOKEN_COOKIE = "pathways_newest_token";
  var LAUNCH_SESSION_SECONDS = 12 * 3600;
  var launchKey = body.getAttribute("data-launch-key");
  function keepNewestToken(value) {
    try {
      window.sessionStorage.setItem(KEPT_TOKEN + launchKey, value);
      return;
    } catch (ignored) {
      // Denied in this frame: the cookie below.
    }
    document.cookie = KEPT_TOKEN_COOKIE + "=" + launchKey + "." + value + "; Path=/; Max-Age=" +
      LAUNCH_SESSION_SECONDS + "; SameSite=None; Secure; Partitioned";
  }
  function newestTokenKept(key) {
    try {
      return window.sessionStorage.getItem(KEPT_TOKEN + key);
    } catch (ignored) {
      // Denied in this frame: the cookie, if it is this launch session's.
    }
    var prefix = KEPT_TOKEN_COOKIE + "=" + key + ".";
    var cookies = document.cookie.split("; ");
    for (var i = 0; i < cookies.length; i++) {
      if (cookies[i].indexOf(prefix) === 0) {
        return cookies[i].slice(prefix.length);
      }
    }
    return null;
  }
  function retryWithTheNewestToken(key) {
    var newest = newestTokenKept(key);
    var url = new URL(window.location.href);
    var sent = url.searchParams.get("lt");
    // Once: the address tried next carries that very token, so its own refusal stops here.
    if (!newest || !sent || newest === sent) {
      return;
    }
    url.searchParams.set("lt", newest);
    window.location.replace(url.href);  // in place of the refused entry in the history
  }
  if (launchKey && token) {
    keepNewestToken(token);
  }
  var expiredKey = body.getAttribute("data-expired-launch-key");
  if (expiredKey) {
    retryWithTheNewestToken(expiredKey);
  }

  if (token && window.fetch) {
    var originalFetch = window.fetch;
    window.fetch = function (input, init) {
      var address = typeof input === "string" || input instanceof URL ? String(input) : input.url;
      var url = new URL(address, window.location.href);
      if (url.origin !== window.location.origin) {
        return originalFetch(input, init);  // the token is for Pathways only
      }
      init = init || {};
      init.headers = new Headers(init.headers || {});
      if (!init.headers.has("X-Launch-Token")) {
        init.headers.set("X-Launch-Token", token);
      }
      return originalFetch(input, init);
    };
  }

  // Every link and form of this page carries the launch token it was rendered with, valid for
  // an hour by default. A page left open longer (the evidence form filled in through a lesson)
  // would then refuse what was typed into it: while it is open, swap in a fresh token now and
  // then.
  var renewUrl = body.getAttribute("data-renew-url");
  // The server says how often (a third of the token's life, at most ten minutes).
  var RENEW_EVERY_MS = (parseInt(body.getAttribute("data-renew-seconds"), 10) || 600) * 1000;
  var CHECK_EVERY_MS = Math.min(60 * 1000, RENEW_EVERY_MS / 2);
  var renewedAt = Date.now();
  var ended = false;

  function swapToken(fresh) {
    if (!fresh || fresh === token) {
      return;
    }
    var old = token;
    var swap = function (value) { return value.split(old).join(fresh); };
    var nodes = document.querySelectorAll("a[href], form[action], input[name=lt]");
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      var attribute = node.tagName === "A" ? "href" : node.tagName === "FORM" ? "action" : "value";
      var value = attribute === "value" ? node.value : node.getAttribute(attribute);
      if (value && value.indexOf(old) !== -1) {
        if (attribute === "value") {
          node.value = swap(value);
        } else {
          node.setAttribute(attribute, swap(value));
        }
      }
    }
    if (window.location.href.indexOf(old) !== -1 && window.history.replaceState) {
      window.history.replaceState(window.history.state, "", swap(window.location.href));
    }
    token = fresh;
    body.setAttribute("data-launch-token", fresh);
    if (launchKey) {
      keepNewestToken(fresh);
    }
  }

  function sayTheSessionEnded() {
    ended = true;
    var main = document.getElementById("main");
    if (!main || document.getElementById("session-ended")) {
      return;
    }
    var note = document.createElement("p");
    note.id = "session-ended";
    note.className = "flash flash-error";
    note.setAttribute("role", "alert");
    note.textContent = "Your Pathways session has ended, so nothing more on this page can be " +
      "saved. Copy anything you have typed, then open Pathways again from your course.";
    // Said where the person is: the top of a tall page is out of sight (the LMS's page scrolls,
    // not the frame), far above the note being written. Beside the field being typed into,
    // which keeps the focus (the alert is read out all the same); else at the top, focused.
    // Before the block the field is in, never inside a <label> (a checkbox's or radio's wraps
    // it: clicking the note would tick the box, and it would be read as the box's name) nor
    // a table's cell.
    var typing = document.activeElement;
    var inMain = typing && typing !== document.body && typing.closest && main.contains(typing);
    var field = inMain && /^(INPUT|SELECT|TEXTAREA)$/.test(typing.tagName) ?
      (typing.closest(".field, fieldset, .checks, .table-wrap, table") ||
       typing.closest("label") || typing) : null;
    if (field) {
      field.parentNode.insertBefore(note, field);
      note.scrollIntoView({ block: "nearest" });
      typing.scrollIntoView({ block: "nearest" });
    } else {
      main.insertBefore(note, main.firstChild);
      bringIntoView(note);
    }
  }

  function renewIfDue() {
    if (!token || !renewUrl || ended || Date.now() - renewedAt < RENEW_EVERY_MS) {
      return;
    }
    renewedAt = Date.now();
    window.fetch(renewUrl, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          sayTheSessionEnded();
          return null;
        }
        return response.ok ? response.json() : null;
      })
      .then(function (answer) {
        if (answer && answer.token) {
          swapToken(answer.token);
        }
      })
      .catch(function () {
        // Offline or asleep: try again at the next check rather than a whole period later.
        renewedAt = Date.now() - RENEW_EVERY_MS + CHECK_EVERY_MS;
      });
  }

  if (token && renewUrl && window.fetch) {
    window.setInterval(renewIfDue, CHECK_EVERY_MS);
    document.addEventListener("visibilitychange", renewIfDue);
    window.addEventListener("focus", renewIfDue);
  }
})();
