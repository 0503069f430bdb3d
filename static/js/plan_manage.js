// A donor replacing the card of their regular gift on /plans/<token> (payments/selfservice.py).
// A static file for the Content-Security-Policy: no inline script anywhere.
//
// The page <-> script contract: <form id="card-form" data-intent-url="…" data-save-url="…"
// data-stripe-key="pk_…" data-billing-name data-billing-email> with the CSRF token, <div id="card-element">,
// <div id="card-errors" role="alert"> and a submit button.
// On submit: POST the form (FormData) to data-intent-url → 200 {client_secret} of a SetupIntent for the
// plan's Stripe customer; Stripe.js confirmCardSetup(client_secret, {payment_method: {card, billing_details}})
// saves the card (a refused card: Stripe's message in #card-errors, the button back); then POST
// setup_intent=<id> to data-save-url → 200 {return_url} (the page again, saying the card is saved).
// Any 4xx/5xx answers {errors, refusal}: the refusal shows in #card-errors.
(function () {
  "use strict";
  var form = document.getElementById("card-form");
  if (!form) return;
  var button = form.querySelector("button[type=submit]");
  var cardErrors = document.getElementById("card-errors");
  var buttonText = button ? button.textContent : "";
  var GENERIC = "Something went wrong and your card was not changed. Please check your connection and try again.";

  function show(text) {
    if (cardErrors) cardErrors.textContent = text || "";
  }
  if (typeof window.Stripe !== "function") {
    show("Card details could not load. Please reload the page to try again.");
    if (button) button.disabled = true;
    return;
  }
  var stripe = window.Stripe(form.dataset.stripeKey);
  var card = stripe.elements().create("card", {hidePostalCode: true});
  card.mount("#card-element");
  card.on("change", function (event) { show(event && event.error ? event.error.message : ""); });

  var busy = false;
  function done() {
    busy = false;
    if (!button) return;
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = buttonText;
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: {"Accept": "application/json", "X-Requested-With": "fetch"},
    }).then(function (response) {
      return response.json().then(function (json) { return {ok: response.ok, body: json}; },
                                   function () { return {ok: false, body: {refusal: GENERIC}}; });
    });
  }
  function billingDetails() {
    var details = {};
    if (form.dataset.billingName) details.name = form.dataset.billingName;
    if (form.dataset.billingEmail) details.email = form.dataset.billingEmail;
    return details;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    busy = true;
    show("");
    if (button) {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      button.textContent = "Saving…";
    }
    post(form.dataset.intentUrl, new FormData(form)).then(function (result) {
      if (!result.ok || !result.body.client_secret) {
        show(result.body.refusal || GENERIC);
        done();
        return null;
      }
      return stripe.confirmCardSetup(result.body.client_secret, {
        payment_method: {card: card, billing_details: billingDetails()},
      }).then(function (outcome) {
        if (outcome.error) {
          show(outcome.error.message || GENERIC);
          done();
          return null;
        }
        var body = new FormData(form);
        body.append("setup_intent", outcome.setupIntent.id);
        return post(form.dataset.saveUrl, body).then(function (saved) {
          if (!saved.ok || !saved.body.return_url) {
            show(saved.body.refusal || GENERIC);
            done();
            return;
          }
          if (button) button.textContent = "Saved: one moment…";
          window.location.assign(saved.body.return_url);
        });
      });
    }).catch(function () {
      show(GENERIC);
      done();
    });
  });
})();
