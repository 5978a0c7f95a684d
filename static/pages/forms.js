// The account pages' forms, enhanced: the server's own checks run before sending, so nothing typed is lost
// and the error sits under its field (aria-invalid, aria-describedby, focus moved there); while the form is
// sent its button is disabled, so a second click cannot send it twice; a page brought back from the
// back-forward cache is loaded afresh. Without this script the server
// answers the same checks with the same words. The words come from the page (data-*), written by the server.
(function () {
  "use strict";

  var encoder = new TextEncoder();

  function problem(form, input) {
    var value = input.value;
    switch (input.getAttribute("data-check")) {
      case "email":
        if (!value.trim()) return form.getAttribute("data-email-missing");
        // The server's rule (email-validator) in short: something@domain.tld, so "hedy@example" is refused here too.
        if (input.validity.typeMismatch || !/^[^@\s]+@[^@\s]+\.[^@\s.]+$/.test(value.trim())) {
          return form.getAttribute("data-email-invalid");
        }
        return null;
      case "password":
        if (Array.from(value).length < 8) return form.getAttribute("data-password-short");
        if (encoder.encode(value).length > 72) return form.getAttribute("data-password-long");  // bcrypt's limit
        return null;
      case "confirm":
        var password = form.querySelector("[data-check=password]");
        return password && value !== password.value ? form.getAttribute("data-confirm-differs") : null;
    }
    return null;
  }

  function show(input, message) {
    var error = document.getElementById(input.id + "-error");
    if (message) {
      input.setAttribute("aria-invalid", "true");
    } else {
      input.removeAttribute("aria-invalid");
    }
    if (error) {
      error.textContent = message || "";
      error.hidden = !message;
    }
  }

  function enhance(form) {
    var button = form.querySelector("button[type=submit]");
    var label = button ? button.textContent : "";
    form.noValidate = true;  // our messages, under the field, instead of the browser's bubbles
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-sending")) {
        event.preventDefault();  // already on its way
        return;
      }
      var first = null;
      form.querySelectorAll("[data-check]").forEach(function (input) {
        var message = problem(form, input);
        show(input, message);
        if (message && !first) first = input;
      });
      if (first) {
        event.preventDefault();
        first.focus();
        return;
      }
      form.setAttribute("data-sending", "true");
      if (button) {
        button.disabled = true;
        button.textContent = form.getAttribute("data-busy") || label;
      }
    });
  }

  // "Show passwords": a toggle button (aria-pressed) that turns the password fields into text and back. It is
  // in the page hidden, and shown here: without this script there is no button that would do nothing. The
  // fields are password fields again when the form is sent, so password managers still see a new password.
  function reveal(form) {
    var toggle = form.querySelector("button[aria-pressed]");
    var fields = form.querySelectorAll("input[data-reveal]");
    if (!toggle || !fields.length) return;
    function set(shown) {
      toggle.setAttribute("aria-pressed", shown ? "true" : "false");
      fields.forEach(function (field) { field.type = shown ? "text" : "password"; });
    }
    toggle.hidden = false;
    toggle.addEventListener("click", function () { set(toggle.getAttribute("aria-pressed") !== "true"); });
    form.addEventListener("submit", function () { set(false); });
  }

  document.querySelectorAll("form[data-checked]").forEach(enhance);
  document.querySelectorAll("form[data-checked]").forEach(reveal);

  // Back (or Forward) to a page Chromium kept in memory: what it shows may be out of date (a reset form whose
  // link has just been used), so ask the server again; it answers from the link's state, never resending.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) window.location.reload();
  });
})();
