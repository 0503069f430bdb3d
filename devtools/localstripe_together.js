/*
 * Together's additions to localstripe's Stripe.js. devtools/localstripe_together.py
 * serves localstripe-v3.js followed by this file at /js.stripe.com/v3/, so the
 * names it defines (Stripe, Element, openModal, LOCALSTRIPE_BASE_API) are in scope.
 *
 * - stripe.confirmCardPayment(clientSecret, {payment_method: {card: cardElement,
 *   billing_details}}) as Stripe.js does it: the card Element's card becomes a
 *   PaymentMethod and the intent is confirmed with the publishable key and the
 *   client secret (POST /v1/payment_intents/{id}/confirm). A decline resolves to
 *   {error: {type: 'card_error', message: 'Your card was declined.', ...}}; a
 *   3-D Secure card opens localstripe's modal. localstripe's own version always
 *   opened the 3-D Secure modal and never sent the card.
 * - stripe.confirmCardSetup(clientSecret, {payment_method: {card: cardElement,
 *   billing_details}}): the same for a SetupIntent (a card saved without a
 *   payment; localstripe's own read a stale Element value and kept the postcode).
 * - stripe.createPaymentMethod({type: 'card', card: cardElement, billing_details}).
 * - stripe.retrievePaymentIntent(clientSecret).
 * - card.on('change', handler) gets Stripe's event ({empty, complete, error});
 *   'ready' fires after mount; card.clear(), focus(), blur(), update() exist;
 *   create('card', {hidePostalCode: true}) shows no postcode input.
 * - Stripe's messages for an incomplete or invalid card, checked before any call.
 *
 * The card Element shows plain inputs: placeholder "number", "exp_month",
 * "exp_year" (2 or 4 digits), "cvc", "postal_code" (tests fill them).
 */
(function () {
  'use strict';
  const localstripeStripe = Stripe;

  function validationError(code, message) {
    return {error: {type: 'validation_error', code: code, message: message}};
  }

  function luhn(number) {
    let sum = 0;
    for (let i = 0; i < number.length; i++) {
      let digit = parseInt(number[number.length - 1 - i], 10);
      if (i % 2 === 1) {
        digit *= 2;
        if (digit > 9) digit -= 9;
      }
      sum += digit;
    }
    return sum % 10 === 0;
  }

  // The card typed in a mounted Element: {card, postal_code} or {error}.
  function readCard(element) {
    const inputs = element && element._inputs;
    if (!inputs) {
      return validationError('incomplete_number', 'Your card number is incomplete.');
    }
    const number = inputs.number.value.replace(/[\s-]/g, '');
    const month = parseInt(inputs.exp_month.value, 10);
    let year = inputs.exp_year.value.trim();
    const cvc = inputs.cvc.value.trim();
    if (!/^\d+$/.test(number) || number.length < 16) {
      return validationError('incomplete_number', 'Your card number is incomplete.');
    }
    if (number.length > 16 || !luhn(number)) {
      return validationError('invalid_number', 'Your card number is invalid.');
    }
    if (!/^\d{2}(\d{2})?$/.test(year) || !(month >= 1 && month <= 12)) {
      return validationError('incomplete_expiry', "Your card's expiration date is incomplete.");
    }
    year = year.length === 2 ? 2000 + parseInt(year, 10) : parseInt(year, 10);
    const now = new Date();
    if (year < now.getFullYear()) {
      return validationError('invalid_expiry_year_past', "Your card's expiration year is in the past.");
    }
    if (year === now.getFullYear() && month < now.getMonth() + 1) {
      return validationError('invalid_expiry_month_past', "Your card's expiration date is in the past.");
    }
    if (!/^\d{3}$/.test(cvc)) {
      return validationError('incomplete_cvc', "Your card's security code is incomplete.");
    }
    return {
      card: {number: number, exp_month: String(month), exp_year: String(year), cvc: cvc},
      postal_code: inputs.postal_code.value.trim(),
    };
  }

  function paymentMethodData(method) {
    if (!method || !(method.card instanceof Element)) {
      return validationError('invalid_request', 'payment_method.card must be a card Element.');
    }
    const card = readCard(method.card);
    if (card.error) return card;
    const billing = Object.assign({}, method.billing_details || {});
    billing.address = Object.assign({}, billing.address || {});
    if (!billing.address.postal_code && card.postal_code) {
      billing.address.postal_code = card.postal_code;
    }
    return {data: {type: 'card', card: card.card, billing_details: billing}};
  }

  // A body without Content-Type is text/plain: a "simple" cross-origin request,
  // no CORS preflight (localstripe answers none); it reads the JSON anyway.
  async function call(method, path, body) {
    try {
      const response = await fetch(LOCALSTRIPE_BASE_API + path, {
        method: method,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const result = await response.json().catch(() => ({}));
      if (response.status !== 200 || result.error) {
        return {error: result.error || {type: 'api_error', message: 'Stripe answered ' + response.status + '.'}};
      }
      return {body: result};
    } catch (err) {
      return {error: {type: 'api_connection_error', message: 'We could not reach Stripe. Please try again.'}};
    }
  }

  function intentId(clientSecret) {
    const match = /^(pi_[A-Za-z0-9]+)_secret_/.exec(clientSecret || '');
    return match && match[1];
  }

  function stateOf(element) {
    const inputs = element._inputs;
    const empty = !inputs || Object.keys(inputs).every(k => !inputs[k].value);
    const card = readCard(element);
    return {elementType: 'card', brand: 'visa', empty: empty, complete: !card.error,
            error: undefined, value: {postalCode: card.postal_code || ''}};
  }

  const on = Element.prototype.on;
  Element.prototype.on = function (event, handler) {
    const element = this;
    return on.call(this, event, function () { handler(stateOf(element)); });
  };
  // What localstripe's Element lacks of Stripe's: 'ready' after mount, clear, focus, blur, update.
  const mount = Element.prototype.mount;
  Element.prototype.mount = function (domElement) {
    mount.call(this, domElement);
    if (this._options && this._options.hidePostalCode && this._inputs) {
      this._inputs.postal_code.remove();
    }
    setTimeout(() => (this.listeners.ready || []).forEach(handler => handler()), 0);
  };
  Element.prototype.clear = function () {
    Object.values(this._inputs || {}).forEach(input => { input.value = ''; });
  };
  Element.prototype.focus = function () { if (this._inputs) this._inputs.number.focus(); };
  Element.prototype.blur = function () { if (document.activeElement) document.activeElement.blur(); };
  Element.prototype.update = function () {};

  Stripe = function (apiKey, options) {
    const stripe = localstripeStripe(apiKey);
    const elements = stripe.elements;
    stripe.elements = function (elementsOptions) {
      const group = elements(elementsOptions);
      const create = group.create;
      group.create = function (type, options) {  // keeps the options (hidePostalCode)
        const element = create.call(this, type, options);
        element._options = options || {};
        return element;
      };
      return group;
    };

    stripe.confirmCardPayment = async function (clientSecret, data, confirmOptions) {
      console.log('localstripe: Stripe().confirmCardPayment() (Together)');
      const pi = intentId(clientSecret);
      if (!pi) {
        return {error: {type: 'invalid_request_error', message: 'Invalid value for confirmCardPayment: clientSecret.'}};
      }
      const body = {key: apiKey, client_secret: clientSecret};
      data = data || {};
      if (typeof data.payment_method === 'string') {
        body.payment_method = data.payment_method;
      } else if (data.payment_method) {
        const method = paymentMethodData(data.payment_method);
        if (method.error) return method;
        body.payment_method_data = method.data;
      }
      ['setup_future_usage', 'receipt_email', 'return_url'].forEach(k => {
        if (data[k]) body[k] = data[k];
      });
      let result = await call('POST', `/v1/payment_intents/${pi}/confirm`, body);
      if (result.error) return {error: result.error};
      let intent = result.body;
      if (intent.status === 'requires_action') {
        const success = await openModal('3D Secure\nDo you want to confirm or cancel?',
                                        'Complete authentication', 'Fail authentication');
        result = await call('POST', `/v1/payment_intents/${pi}/_authenticate?success=${success}`,
                            {key: apiKey, client_secret: clientSecret});
        if (result.error) return {error: result.error};
        intent = result.body;
        if (intent.status === 'requires_payment_method') {
          return {error: {type: 'card_error', code: 'payment_intent_authentication_failure',
                          message: 'We are unable to authenticate your payment method. Please choose a ' +
                                   'different payment method and try again.',
                          payment_intent: intent}};
        }
      }
      return {paymentIntent: intent};
    };

    // confirmCardSetup(clientSecret, {payment_method: {card: cardElement, billing_details}}):
    // the card Element's card saved through a SetupIntent (a plan's new card), as
    // confirmCardPayment above; a 3-D Secure card opens localstripe's modal.
    stripe.confirmCardSetup = async function (clientSecret, data) {
      console.log('localstripe: Stripe().confirmCardSetup() (Together)');
      const match = /^(seti_[A-Za-z0-9]+)_secret_/.exec(clientSecret || '');
      if (!match) {
        return {error: {type: 'invalid_request_error', message: 'Invalid value for confirmCardSetup: clientSecret.'}};
      }
      const seti = match[1];
      const body = {key: apiKey, client_secret: clientSecret, use_stripe_sdk: true};
      data = data || {};
      if (typeof data.payment_method === 'string') {
        body.payment_method = data.payment_method;
      } else {
        const method = paymentMethodData(data.payment_method);
        if (method.error) return method;
        body.payment_method_data = method.data;
      }
      let result = await call('POST', `/v1/setup_intents/${seti}/confirm`, body);
      if (result.error) return {error: result.error};
      let intent = result.body;
      if (intent.status === 'requires_action') {
        const success = await openModal('3D Secure\nDo you want to confirm or cancel?',
                                        'Complete authentication', 'Fail authentication');
        result = await call('POST', `/v1/setup_intents/${seti}/${success ? 'confirm' : 'cancel'}`,
                            {key: apiKey, client_secret: clientSecret, use_stripe_sdk: true});
        if (result.error) return {error: result.error};
        intent = result.body;
        if (intent.status !== 'succeeded') {
          return {error: {type: 'card_error', code: 'setup_intent_authentication_failure',
                          message: 'We are unable to authenticate your payment method. Please choose a ' +
                                   'different payment method and try again.',
                          setup_intent: intent}};
        }
      }
      return {setupIntent: intent};
    };

    stripe.createPaymentMethod = async function (data) {
      const method = paymentMethodData(data);
      if (method.error) return method;
      const result = await call('POST', '/v1/payment_methods', Object.assign({key: apiKey}, method.data));
      return result.error ? {error: result.error} : {paymentMethod: result.body};
    };

    stripe.retrievePaymentIntent = async function (clientSecret) {
      const pi = intentId(clientSecret);
      const query = `key=${encodeURIComponent(apiKey)}&client_secret=${encodeURIComponent(clientSecret)}`;
      const result = await call('GET', `/v1/payment_intents/${pi}?${query}`);
      return result.error ? {error: result.error} : {paymentIntent: result.body};
    };

    return stripe;
  };
})();
