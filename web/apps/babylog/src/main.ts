// BabyLog: always opens, reads and writes the local database (latchkey-js on Dexie), needs
// sign-in only to sync, and shares a family's log through an organization.

import {
  Auth,
  LatchkeyError,
  SyncEngine,
  bannerText,
  emailLinkStatus,
  type EmailLinkResult,
  type RedirectResult,
  type SocialProvider,
  type SyncStatus,
} from 'latchkey-js';
import { $, TABLES, el, newId, type Baby, type Kind } from './dom.js';
import { wireUndo } from './edit.js';
import { renderMove, wireMove } from './move.js';
import { renderAccountData, wireAccountData } from './account.js';
import { INDEXES, INDEX_VERSION, stepDay } from './history.js';
import { renderTimers, renderToday, runningTimers } from './today.js';

// Tests (and the curious) can hold writes back longer than the default burst window.
const delayOverride = Number(localStorage.getItem('babylog:syncDelayMs'));
const auth = new Auth({ channelName: 'babylog:token' });
const sync = new SyncEngine({
  auth,
  tables: [...TABLES],
  dbName: 'babylog',
  indexes: INDEXES,
  indexVersion: INDEX_VERSION,
  writeDelayMs: Number.isFinite(delayOverride) && delayOverride > 0 ? delayOverride : undefined,
});

let babyId: string | null = localStorage.getItem('babylog:baby');
let status: SyncStatus = sync.currentStatus;

// ---- the banner -------------------------------------------------------------------------

function renderBanner(s: SyncStatus): void {
  status = s;
  const banner = $<HTMLButtonElement>('banner');
  const text = bannerText(s);
  banner.hidden = text === null;
  banner.textContent = text ?? '';
  banner.dataset.state = s.state;
  banner.title = s.state === 'error' && s.error ? s.error : '';
  void renderRejected();
}

$('banner').addEventListener('click', () => {
  if (status.state === 'signed-out') location.assign(signInUrl());
  else sync.poke();
});

const signInUrl = () => `/sign-in?redirect_url=${encodeURIComponent('/')}`;
const signUpUrl = () => `/sign-up?redirect_url=${encodeURIComponent('/')}`;

// ---- account and family -----------------------------------------------------------------

// Whether latchkey has told us who is signed in since the page opened (not when opened offline).
let accountKnown = false;

function renderAccount(): void {
  const box = $('account');
  const user = auth.user;
  const remembered = localStorage.getItem('babylog:who');
  if (user) localStorage.setItem('babylog:who', user.emailAddress ?? user.id);
  else if (accountKnown) localStorage.removeItem('babylog:who');
  if (!user && !accountKnown && remembered) {
    // Opened offline: the session is still there, latchkey just cannot be asked yet.
    box.replaceChildren(el('span', { id: 'who-offline', title: 'Signed in; syncs when back online' }, remembered));
  } else if (!user) {
    box.replaceChildren(
      el('a', { href: signInUrl(), id: 'sign-in' }, 'Sign in'),
      el('a', { href: signUpUrl(), id: 'sign-up' }, 'Create account'),
    );
  } else {
    const out = el('button', { type: 'button', id: 'sign-out' }, 'Sign out');
    out.addEventListener('click', async () => {
      accountNote(null);
      await auth.signOut().catch(() => undefined);
    });
    const add = el('button', { type: 'button', id: 'add-passkey', hidden: !passkeyOffered || !passkeysHere }, 'Add a passkey');
    add.addEventListener('click', () => void addPasskey(add));
    box.replaceChildren(el('span', { id: 'who' }, user.emailAddress ?? user.id), add, out);
  }
  renderSignInWith();
  renderFamily();
  renderAccountData(auth);
}

// ---- passkeys (latchkey-js's addPasskey and signInWithPasskey) ---------------------------

// Whether latchkey offers passkeys, and whether this browser can use them.
let passkeyOffered = false;
const passkeysHere = typeof PublicKeyCredential !== 'undefined';

function accountNote(note: { text: string; kind: 'error' | 'info' } | null): void {
  const p = $('account-message');
  p.textContent = note?.text ?? '';
  p.dataset.kind = note?.kind ?? '';
}

async function addPasskey(button: HTMLButtonElement): Promise<void> {
  accountNote(null);
  button.disabled = true;
  try {
    const added = await auth.addPasskey();
    accountNote({ kind: 'info', text: `Passkey added (${added.name}). Next time, sign in with it.` });
  } catch (e) {
    const code = e instanceof LatchkeyError ? e.code : (e as Error)?.name;
    const text: Record<string, string> = {
      session_reverification_required: 'Adding a passkey needs a recent sign-in: sign out and in again, then add it.',
      passkey_registration_cancelled: 'No passkey was added: the request was cancelled or timed out.',
      InvalidStateError: 'This device already holds a passkey for your account.',
    };
    accountNote({ kind: 'error', text: text[code ?? ''] ?? `Could not add a passkey: ${describe(e)}` });
  } finally {
    button.disabled = false;
  }
}

$('passkey-sign-in').addEventListener('click', async () => {
  const button = $<HTMLButtonElement>('passkey-sign-in');
  signInNote = null;
  button.disabled = true;
  renderSignInWith();
  try {
    const result = await auth.signInWithPasskey();
    if (result.status === 'cancelled') {
      signInNote = { kind: 'error', text: 'No passkey was used: the request was cancelled, or this device holds no passkey for BabyLog.' };
    }
    // The passkey proved the first factor; the authenticator app comes next, on latchkey's page.
    if (result.status === 'needs-second-factor') location.assign(`/sign-in/factor-two?redirect_url=${encodeURIComponent('/')}`);
  } catch (e) {
    signInNote = { kind: 'error', text: `Could not sign in with a passkey: ${describe(e)}` };
  } finally {
    button.disabled = false;
  }
  renderSignInWith();
});

// ---- "Continue with <provider>": the identity providers latchkey offers ------------------

// The page the provider's trip comes back to (BabyLog's only page, marked by this parameter).
const CALLBACK_PARAM = 'sso-callback';
let providers: SocialProvider[] = [];
// A newcomer whose address the provider did not vouch for proves it with the emailed code.
let awaitingCode = false;
let signInNote: { text: string; kind: 'error' | 'info' } | null = null;
// The page a sign-in link leads to (BabyLog's only page, marked by this parameter).
const LINK_PARAM = 'email-link';
// Whether latchkey mails sign-in links ("Email me a sign-in link").
let emailLinkOffered = false;
// The link is out: this tab waits for it to be opened (here or on another device).
let linkWait: { emailAddress: string; controller: AbortController } | null = null;

function renderSignInWith(): void {
  const signedOut = accountKnown && !auth.isSignedIn;
  const passkey = passkeyOffered && passkeysHere;
  const offered = providers.length > 0 || emailLinkOffered || passkey;
  $('sign-in-with').hidden = !signedOut || (!offered && !awaitingCode && !signInNote && !linkWait);
  $('passkey-sign-in').hidden = !passkey || awaitingCode || linkWait !== null;
  $('email-link').hidden = !emailLinkOffered || awaitingCode || linkWait !== null;
  $('email-link-waiting').hidden = linkWait === null;
  $('email-link-sent').textContent = linkWait
    ? `Check your email: we sent a sign-in link to ${linkWait.emailAddress}. Open it here or on another device; this page signs you in once you do.`
    : '';
  $('providers').replaceChildren(
    ...(awaitingCode || linkWait ? [] : providers).map((p) => {
      const button = el('button', { type: 'button' }, `Continue with ${p.name}`);
      button.dataset.strategy = p.strategy;
      button.addEventListener('click', () => void continueWith(p, button));
      return button;
    }),
  );
  $('provider-code').hidden = !awaitingCode;
  const note = $('sign-in-message');
  note.textContent = signInNote?.text ?? '';
  note.dataset.kind = signInNote?.kind ?? '';
}

async function continueWith(p: SocialProvider, button: HTMLButtonElement): Promise<void> {
  signInNote = null;
  renderSignInWith();
  button.disabled = true;
  try {
    // Signed in at once (a known account): straight back to the app; otherwise to the callback.
    await auth.signInWith(p.strategy, {
      redirectUrl: new URL(`/?${CALLBACK_PARAM}`, location.origin).href,
      redirectUrlComplete: new URL('/', location.origin).href,
    });
  } catch (e) {
    signInNote = { kind: 'error', text: `Could not start signing in with ${p.name}: ${describe(e)}` };
    renderSignInWith();
  } finally {
    button.disabled = false;
  }
}

// ---- "Email me a sign-in link" (latchkey-js's signInWithEmailLink) ------------------------


$('email-link').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>('email-link-address');
  const button = $('email-link').querySelector('button') as HTMLButtonElement;
  const emailAddress = input.value.trim();
  const controller = new AbortController();
  signInNote = null;
  button.disabled = true;
  renderSignInWith();
  try {
    const result = await auth.signInWithEmailLink({
      emailAddress,
      redirectUrl: new URL(`/?${LINK_PARAM}`, location.origin).href,
      signal: controller.signal,
      onEmailSent: () => {
        linkWait = { emailAddress, controller };
        renderSignInWith();
      },
    });
    linkWait = null;
    signInNote = linkNote(result);
    if (result.status === 'signed-in') input.value = '';
    // The link proved the address; the authenticator app comes next, on latchkey's page.
    if (result.status === 'needs-second-factor') location.assign(`/sign-in/factor-two?redirect_url=${encodeURIComponent('/')}`);
  } catch (e) {
    linkWait = null;
    signInNote = { kind: 'error', text: `Could not send a sign-in link: ${describe(e)}` };
  } finally {
    button.disabled = false;
  }
  renderSignInWith();
});

$('email-link-cancel').addEventListener('click', () => linkWait?.controller.abort());

function linkNote(result: EmailLinkResult): { text: string; kind: 'error' | 'info' } | null {
  switch (result.status) {
    case 'expired':
      return { kind: 'error', text: 'The sign-in link expired before it was opened. Ask for a new one.' };
    case 'cancelled':
      return { kind: 'info', text: 'Stopped waiting for the sign-in link.' };
    default:
      return null;
  }
}

/** The page a sign-in link led to: what it did, in words, when this tab is not signed in. */
function finishLinkLanding(): void {
  const landed = emailLinkStatus(location.href);
  // The parameters have done their work: a reload is an ordinary visit.
  history.replaceState(null, '', '/');
  if (!landed || auth.isSignedIn) return;
  const said: Record<string, string> = {
    verified: 'Sign-in confirmed. Go back to the tab where you asked for the link: it signs you in by itself.',
    expired: 'This sign-in link has expired. Ask for a new one.',
    client_mismatch: 'This sign-in link works only in the browser where you asked for it.',
  };
  const text = said[landed.status] ?? 'This sign-in link can’t be used: it was used already, or it is not valid. Ask for a new one.';
  signInNote = { kind: landed.status === 'verified' ? 'info' : 'error', text };
  renderSignInWith();
}

const providerName = (strategy: string | null) =>
  providers.find((p) => p.strategy === strategy)?.name ?? 'the provider';

/** What the way back from the provider means for the person, in words. */
function noteFor(result: RedirectResult): { text: string; kind: 'error' | 'info' } | null {
  switch (result.status) {
    case 'signed-in':
    case 'none':
      return null;
    case 'needs-email-code':
      return { kind: 'info', text: `We emailed a code to ${result.emailAddress ?? 'your address'}. Enter it to finish creating your account.` };
    case 'missing-requirements':
      return { kind: 'error', text: `Signing up with ${providerName(result.strategy)} needs more (${result.missingFields.join(', ')}): use “Create account” instead.` };
    case 'failed': {
      const name = providerName(result.strategy);
      if (result.error.code === 'oauth_access_denied') {
        return { kind: 'error', text: `Sign-in with ${name} was cancelled: access was not granted at ${name}. You are not signed in.` };
      }
      return { kind: 'error', text: `Could not sign in with ${name}: ${result.error.message} You are not signed in.` };
    }
  }
}

/** The page loaded at the provider's way back: finish the sign-in (or say why it failed). */
async function finishProviderSignIn(): Promise<void> {
  try {
    const result = await auth.handleRedirectCallback();
    awaitingCode = result.status === 'needs-email-code';
    signInNote = noteFor(result);
    accountKnown = true;
  } catch {
    signInNote = { kind: 'error', text: 'Could not finish signing in; check your connection and try again.' };
  }
  // The parameter has done its work: a reload is an ordinary visit.
  history.replaceState(null, '', '/');
  renderAccount();
}

$('provider-code').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>('provider-code-input');
  try {
    await auth.verifyEmailCode(input.value.trim());
    awaitingCode = false;
    signInNote = null;
    input.value = '';
  } catch (e) {
    signInNote = { kind: 'error', text: describe(e) };
  }
  renderSignInWith();
});

function family() {
  return auth.user?.organizations[0] ?? null;
}

function renderFamily(): void {
  const section = $('family');
  section.hidden = !auth.isSignedIn;
  const fam = family();
  $('create-family').hidden = fam !== null;
  $('invite').hidden = fam === null || fam.role !== 'org:admin';
  $('family-status').textContent = fam
    ? `Family “${fam.name}”: new babies you add are shared with everyone in it.`
    : 'Create a family to share babies with your partner; they join by the invitation we email them.';
  // New babies go to the family once there is one; entries follow their baby.
  sync.setSpace(fam?.id ?? 'me');
  void render(); // the move button depends on the family
}

$('create-family').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>('family-name');
  try {
    await auth.createOrganization(input.value.trim());
    input.value = '';
    message('Family created.');
    renderAccount();
  } catch (e) {
    message(describe(e));
  }
});

$('invite').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>('invite-email');
  const fam = family();
  if (!fam) return;
  try {
    await auth.inviteToOrganization(fam.id, input.value.trim());
    message(`Invitation sent to ${input.value.trim()}.`);
    input.value = '';
  } catch (e) {
    message(describe(e));
  }
});

const message = (text: string) => ($('family-message').textContent = text);
const describe = (e: unknown) => (e instanceof LatchkeyError ? e.message : 'That did not work; check your connection and try again.');

// ---- babies -----------------------------------------------------------------------------

async function babies(): Promise<Baby[]> {
  const all = await sync.table<Baby>('babies').toArray();
  return all.sort((a, b) => (a.created_at ?? 0) - (b.created_at ?? 0) || a.name.localeCompare(b.name));
}

async function renderBabies(): Promise<Baby | null> {
  const list = await babies();
  if (!list.some((b) => b.id === babyId)) babyId = list[0]?.id ?? null;
  const box = $('babies');
  box.replaceChildren(
    ...list.map((b) => {
      const chip = el('button', { type: 'button', textContent: b.name });
      chip.setAttribute('role', 'radio');
      chip.setAttribute('aria-checked', String(b.id === babyId));
      chip.dataset.id = b.id;
      chip.addEventListener('click', () => {
        babyId = b.id;
        localStorage.setItem('babylog:baby', b.id);
        void render();
      });
      return chip;
    }),
  );
  if (list.length === 0) box.replaceChildren(el('p', { className: 'empty' }, 'Add your baby to start logging.'));
  const chosen = list.find((b) => b.id === babyId) ?? null;
  renderMove(chosen, auth.isSignedIn ? family() : null);
  return chosen;
}

$('add-baby').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>('baby-name');
  const id = newId('baby');
  const name = input.value.trim();
  // Cleared before the write, so nothing typed meanwhile is wiped.
  input.value = '';
  await sync.put('babies', id, { name, created_at: Date.now() });
  babyId = id;
  localStorage.setItem('babylog:baby', id);
  await render();
});

// ---- logging ----------------------------------------------------------------------------

async function log(table: Kind, fields: Record<string, unknown>): Promise<void> {
  const baby = (await sync.table<Baby>('babies').get(babyId ?? '')) ?? null;
  if (!baby) return;
  await sync.put(table, newId(table.slice(0, -1)), { baby_id: baby.id, ...fields }, { space: baby.space ?? undefined });
  await render();
}

document.querySelectorAll<HTMLButtonElement>('[data-timer]').forEach((button) =>
  button.addEventListener('click', async () => {
    const which = button.dataset.timer!;
    const running = (await runningTimers(sync, babyId)).find((t) => t.which === which);
    if (running) {
      await sync.put(running.table, running.entry.id, { ended_at: Date.now() });
      await render();
    } else if (which === 'sleep') await log('sleeps', { started_at: Date.now() });
    else await log('feeds', { kind: 'breast', side: which === 'breast-left' ? 'left' : 'right', started_at: Date.now() });
  }),
);

$('bottle').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>('bottle-ml');
  const ml = Math.round(Number(input.value));
  input.value = '';
  await log('feeds', { kind: 'bottle', amount_ml: ml, started_at: Date.now() });
});

$('solids').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>('solids-food');
  const food = input.value.trim();
  input.value = '';
  await log('feeds', { kind: 'solids', food, started_at: Date.now() });
});

document.querySelectorAll<HTMLButtonElement>('[data-diaper]').forEach((button) =>
  button.addEventListener('click', () => log('diapers', { kind: button.dataset.diaper, at: Date.now() })),
);

$('note').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>('note-text');
  const text = input.value.trim();
  input.value = '';
  await log('notes', { text, at: Date.now() });
});

// ---- rejected operations stay visible with the server's reason ---------------------------

async function renderRejected(): Promise<void> {
  const rejected = await sync.rejected();
  $('rejected').hidden = rejected.length === 0;
  $('rejected-list').replaceChildren(
    ...rejected.map((op) => {
      const dismiss = el('button', { type: 'button' }, 'Dismiss');
      dismiss.addEventListener('click', async () => {
        await sync.dismissRejected(op.key!);
        await renderRejected();
      });
      return el('li', {}, `${op.table} ${op.action}: ${op.reason.message} `, dismiss);
    }),
  );
}

// ---- wiring -------------------------------------------------------------------------------

let rendering: Promise<void> | null = null;
let queued: Promise<void> | null = null;

/**
 * Renders from the local database. A call during a render queues exactly one more, which starts
 * after it, so the latest write is always drawn and bursts of calls cost two renders.
 */
function render(): Promise<void> {
  if (!rendering) {
    rendering = (async () => {
      await renderToday(sync, await renderBabies(), render);
      await renderTimers(sync, babyId);
    })().finally(() => (rendering = null));
    return rendering;
  }
  queued ??= rendering.then(() => {
    queued = null;
    return render();
  });
  return queued;
}

async function main(): Promise<void> {
  sync.onStatus((s) => {
    renderBanner(s);
    // A sync may have brought the partner's entries, or another tab wrote some.
    void render();
  });
  auth.onChange(renderAccount);
  renderAccount();
  wireUndo(sync, render);
  wireMove(sync, render);
  wireAccountData(auth);
  for (const [id, step] of [['day-prev', -1], ['day-next', 1], ['day-today', 0]] as const) {
    $(id).addEventListener('click', () => {
      stepDay(step);
      void render();
    });
  }
  await render();
  setInterval(() => void renderTimers(sync, babyId), 1000);
  // Offline, or latchkey unreachable: the app works on; the engine says so and retries.
  const load = () =>
    auth.load().then(
      () => {
        accountKnown = true;
        renderAccount();
      },
      () => undefined,
    );
  const offered = () =>
    auth.signInMethods().then(
      (methods) => {
        providers = methods.providers;
        emailLinkOffered = methods.emailLink;
        passkeyOffered = methods.passkey;
        renderAccount();
      },
      () => undefined,
    );
  const search = new URLSearchParams(location.search);
  const callback = search.has(CALLBACK_PARAM);
  // The providers' names are wanted for the callback's words, so both are asked at once.
  await Promise.all([offered(), callback ? undefined : load()]);
  if (callback) await finishProviderSignIn();
  else if (search.has(LINK_PARAM)) finishLinkLanding();
  window.addEventListener('online', () => void Promise.all([load(), offered()]));
  sync.start();
  document.body.dataset.ready = 'true';
  if ('serviceWorker' in navigator) await navigator.serviceWorker.register('/sw.js').catch(() => undefined);
}

void main();
