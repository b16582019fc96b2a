// The hosted pages' passkeys (docs/passkeys.md): "Sign in with a passkey" and the browser's
// autofill on /sign-in, "Add a passkey" on /user. It calls latchkey's Frontend API on this
// origin as clerk-js does: the options arrive as JSON text in `verification.nonce` (base64url
// fields, no `{publicKey}` wrapper) and the browser's answer goes back as
// `public_key_credential`. Shown only where the browser has WebAuthn; the rest of the pages
// works without this script.

const decode = (text) => {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
};
const encode = (buffer) => {
  let raw = '';
  for (const byte of new Uint8Array(buffer)) raw += String.fromCharCode(byte);
  return btoa(raw).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};

// A Frontend API call with a form body; a refusal throws with latchkey's words and code.
async function fapi(path, form) {
  const res = await fetch(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  const json = await res.json().catch(() => null);
  if (!res.ok) {
    const e = json?.errors?.[0];
    const error = new Error(e?.long_message || e?.message || `The server answered ${res.status}. Try again.`);
    error.code = e?.code;
    throw error;
  }
  return json.response;
}

const withIds = (list) => (list ?? []).map((c) => ({ ...c, id: decode(c.id) }));

function requestOptions(nonce) {
  const o = JSON.parse(nonce);
  return { ...o, challenge: decode(o.challenge), allowCredentials: withIds(o.allowCredentials) };
}

function creationOptions(nonce) {
  const o = JSON.parse(nonce);
  return { ...o, challenge: decode(o.challenge), user: { ...o.user, id: decode(o.user.id) }, excludeCredentials: withIds(o.excludeCredentials) };
}

// The browser's answer in the JSON shape clerk-js posts.
function answer(credential) {
  const r = credential.response;
  const response = { clientDataJSON: encode(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = encode(r.attestationObject);
    response.transports = r.getTransports?.() ?? [];
  } else {
    response.authenticatorData = encode(r.authenticatorData);
    response.signature = encode(r.signature);
    if (r.userHandle) response.userHandle = encode(r.userHandle);
  }
  return JSON.stringify({
    type: credential.type,
    id: credential.id,
    rawId: encode(credential.rawId),
    authenticatorAttachment: credential.authenticatorAttachment ?? null,
    response,
  });
}

// The words for a failure of the browser's WebAuthn call.
function said(error, what) {
  if (error?.name === 'NotAllowedError') return `No passkey was used: ${what} was cancelled, timed out, or this device holds no passkey for this site.`;
  if (error?.name === 'InvalidStateError') return 'This device already holds a passkey for your account.';
  if (error?.name === 'SecurityError') return 'This browser does not allow passkeys on this address.';
  return error?.message || 'Something went wrong. Try again.';
}

function show(box, message) {
  box.textContent = message;
  box.hidden = !message;
}

const signIn = document.querySelector('[data-passkey-sign-in]');
if (signIn && window.PublicKeyCredential) {
  const box = signIn.querySelector('[data-passkey-error]');
  const button = signIn.querySelector('[data-passkey-button]');
  let autofill = null; // the AbortController of the autofill request, while it waits

  // One passkey sign-in: a new sign-in's challenge, the browser's answer, latchkey's verdict.
  const run = async (mediation, signal) => {
    const started = await fapi('/v1/client/sign_ins', { strategy: 'passkey' });
    const publicKey = requestOptions(started.first_factor_verification.nonce);
    const credential = await navigator.credentials.get({ publicKey, mediation, signal });
    if (!credential) throw Object.assign(new Error('No passkey was chosen.'), { name: 'NotAllowedError' });
    const done = await fapi(`/v1/client/sign_ins/${encodeURIComponent(started.id)}/attempt_first_factor`, {
      strategy: 'passkey',
      public_key_credential: answer(credential),
    });
    if (done.status === 'complete') location.assign(signIn.dataset.done);
    else if (done.status === 'needs_second_factor') location.assign(signIn.dataset.second);
    else throw new Error('The passkey did not finish the sign-in. Try again, or sign in with your password.');
  };

  signIn.hidden = false;
  button?.addEventListener('click', async () => {
    autofill?.abort();
    autofill = null;
    button.disabled = true;
    show(box, '');
    try {
      await run('optional');
    } catch (e) {
      show(box, said(e, 'the sign-in'));
    } finally {
      button.disabled = false;
    }
  });

  if ('autofill' in signIn.dataset && PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then(async (available) => {
      if (!available || autofill) return;
      const controller = new AbortController();
      autofill = controller;
      try {
        await run('conditional', controller.signal);
      } catch (e) {
        // A request the button replaced, or one the person never answered, says nothing.
        if (controller.signal.aborted || e?.name === 'AbortError' || e?.name === 'NotAllowedError') return;
        show(box, said(e, 'the sign-in'));
      }
    }, () => undefined);
  }
}

const add = document.querySelector('form[data-passkey-add]');
if (add && window.PublicKeyCredential) {
  const box = add.querySelector('[data-passkey-error]');
  const button = add.querySelector('button[type=submit]');
  add.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    show(box, '');
    try {
      const passkey = await fapi('/v1/me/passkeys', {});
      const publicKey = creationOptions(passkey.verification.nonce);
      const credential = await navigator.credentials.create({ publicKey });
      await fapi(`/v1/me/passkeys/${encodeURIComponent(passkey.id)}/attempt_verification`, {
        strategy: 'passkey',
        public_key_credential: answer(credential),
      });
      location.assign('/user?notice=passkey_added');
    } catch (e) {
      // A passkey is a new way in: latchkey wants a recent check first. The form, posted
      // natively, shows the hosted "Confirm it's you".
      if (e?.code === 'session_reverification_required') return add.submit();
      show(box, said(e, 'adding the passkey'));
      button.disabled = false;
    }
  });
}
