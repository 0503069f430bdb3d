// Card payment on a public page (donation forms, checkout links, the split giving form).
// A static file for the Content-Security-Policy: no inline script anywhere.
//
// The page <-> script contract (docs: payments/public.py):
//   <form id="pay-form" data-intent-url="…" data-stripe-key="pk_…"> with the donor's fields, a hidden
//   attempt_key and the CSRF token; <div id="card-element">, <div id="card-errors" role="alert">, a submit
//   button. Optional: data-billing-name / data-billing-email on the form (the donor is known), data-preview
//   (a staff preview: nothing is sent), #pay-refusal (a box for a refusal), an element id="error-<field>" per
//   field for its message, radios name="amount" (data-cents) and an input name="other_amount" whose choice
//   the submit button shows ("Give $50"), and radios name="frequency" (data-words: "Give $50 monthly").
// On submit: POST the form (FormData) to data-intent-url. 200 {client_secret, return_url}: confirm the card
// with Stripe.js (confirmCardPayment) and go to return_url; Stripe's error (a declined card) shows in
// #card-errors and the button comes back. 400/409/429 {errors: {field: [messages]}, refusal}: the messages
// beside their fields, the refusal in #pay-refusal.
(function () {
  "use strict";
  var form = document.getElementById("pay-form");
  if (!form || form.dataset.preview) return;
  var button = form.querySelector("button[type=submit]");
  var cardErrors = document.getElementById("card-errors");
  var refusalBox = document.getElementById("pay-refusal");
  var buttonText = button ? button.textContent : "";
  var GENERIC = "Something went wrong and no payment was taken. Please check your connection and try again.";

  if (typeof window.Stripe !== "function") {
    showRefusal("Card payments could not load. Please reload the page to try again.");
    if (button) button.disabled = true;
    return;
  }
  var stripe = window.Stripe(form.dataset.stripeKey);
  var card = stripe.elements().create("card", {hidePostalCode: true});
  card.mount("#card-element");
  card.on("change", function (event) {
    if (cardErrors) cardErrors.textContent = event && event.error ? event.error.message : "";
  });

  // --- the amount shown on the button ------------------------------------------------------
  var other = form.querySelector("input[name=other_amount]");
  function dollars(cents) {
    var whole = Math.floor(cents / 100), part = cents % 100;
    var text = whole.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return "$" + text + (part ? "." + (part < 10 ? "0" : "") + part : "");
  }
  function chosenCents() {
    if (other && other.value.trim()) {
      var match = /^\$?\s*([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.([0-9]{1,2}))?$/.exec(other.value.trim());
      if (!match) return null;
      var cents = parseInt(match[1].replace(/,/g, ""), 10) * 100 + (match[2] ? parseInt((match[2] + "0").slice(0, 2), 10) : 0);
      return cents > 0 ? cents : null;
    }
    var radio = form.querySelector("input[name=amount]:checked");
    return radio ? parseInt(radio.dataset.cents || radio.value, 10) : null;
  }
  function syncLabel() {
    if (!button || !button.dataset.label) return;
    var cents = chosenCents();
    var often = form.querySelector("input[name=frequency]:checked");  // a recurring gift: "Give $50 monthly"
    var words = often && often.dataset.words ? " " + often.dataset.words : "";
    button.textContent = button.dataset.label + (cents ? " " + dollars(cents) + words : "");
  }
  form.addEventListener("change", function (event) {
    if (event.target.name === "amount" && other) other.value = "";
    syncLabel();
  });
  if (other) {
    other.addEventListener("input", function () {
      if (other.value.trim()) {
        Array.prototype.forEach.call(form.querySelectorAll("input[name=amount]"), function (r) { r.checked = false; });
      }
      syncLabel();
    });
  }
  syncLabel();

  // --- errors ------------------------------------------------------------------------------
  function showRefusal(text) {
    if (!text) return;
    if (refusalBox) {
      refusalBox.textContent = text;
      refusalBox.hidden = false;
      refusalBox.focus();
    } else if (cardErrors) {
      cardErrors.textContent = text;
    }
  }
  function clearErrors() {
    if (refusalBox) { refusalBox.hidden = true; refusalBox.textContent = ""; }
    if (cardErrors) cardErrors.textContent = "";
    Array.prototype.forEach.call(form.querySelectorAll("[id^=error-]"), function (el) { el.textContent = ""; el.hidden = true; });
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid=true]"), function (el) {
      el.removeAttribute("aria-invalid");
      var described = (el.getAttribute("aria-describedby") || "").split(" ").filter(function (id) { return id.indexOf("error-") !== 0; });
      if (described.length) el.setAttribute("aria-describedby", described.join(" ")); else el.removeAttribute("aria-describedby");
    });
  }
  function showFieldErrors(errors) {
    var first = null;
    Object.keys(errors || {}).forEach(function (name) {
      var text = (errors[name] || []).join(" ");
      var slot = document.getElementById("error-" + name);
      var inputs = form.querySelectorAll("[name='" + name.replace(/'/g, "") + "']");
      if (!slot) {
        slot = document.createElement("p");
        slot.className = "field-error";
        slot.id = "error-" + name;
        var anchor = inputs.length ? inputs[inputs.length - 1] : null;
        if (anchor && anchor.parentNode) anchor.parentNode.insertBefore(slot, anchor.nextSibling);
        else if (cardErrors) cardErrors.parentNode.insertBefore(slot, cardErrors);
      }
      slot.textContent = text;
      slot.hidden = false;
      Array.prototype.forEach.call(inputs, function (input) {
        input.setAttribute("aria-invalid", "true");
        var described = input.getAttribute("aria-describedby");
        input.setAttribute("aria-describedby", (described ? described + " " : "") + slot.id);
      });
      if (!first && inputs.length) first = inputs[0];
    });
    return first;
  }

  // --- paying --------------------------------------------------------------------------------
  var busy = false;
  function done() {
    busy = false;
    if (!button) return;
    button.disabled = false;
    button.removeAttribute("aria-busy");
    if (button.dataset.label) syncLabel(); else button.textContent = buttonText;
  }
  function billingDetails() {
    var value = function (name) { var el = form.querySelector("[name=" + name + "]"); return el ? el.value.trim() : ""; };
    var name = form.dataset.billingName || [value("first_name"), value("last_name")].filter(Boolean).join(" ");
    var email = form.dataset.billingEmail || value("email");
    var details = {};
    if (name) details.name = name;
    if (email) details.email = email;
    return details;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    busy = true;
    clearErrors();
    if (button) {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      button.textContent = "Processing…";
    }
    fetch(form.dataset.intentUrl, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: {"Accept": "application/json", "X-Requested-With": "fetch"},
    }).then(function (response) {
      return response.json().then(function (body) { return {ok: response.ok, body: body}; }, function () {
        // Not JSON: Django's CSRF page (a page left open past its session) or a proxy's error.
        var text = response.status === 403 ? "This page has expired. Please reload it and try again; no payment was taken." : GENERIC;
        return {ok: false, body: {refusal: text}};
      });
    }).then(function (result) {
      if (!result.ok || !result.body.client_secret) {
        var firstInvalid = showFieldErrors(result.body.errors);
        showRefusal(result.body.refusal || (firstInvalid ? "" : GENERIC));
        if (firstInvalid && !(result.body.refusal && refusalBox)) firstInvalid.focus();
        done();
        return null;
      }
      return stripe.confirmCardPayment(result.body.client_secret, {
        payment_method: {card: card, billing_details: billingDetails()},
      }).then(function (outcome) {
        if (outcome.error) {
          if (cardErrors) cardErrors.textContent = outcome.error.message || GENERIC;
          done();
          return;
        }
        if (button) button.textContent = "Paid: one moment…";
        window.location.assign(result.body.return_url);
      });
    }).catch(function () {
      showRefusal(GENERIC);
      done();
    });
  });
})();
