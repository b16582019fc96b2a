// Passkeys over latchkey's Frontend API (docs/passkeys.md), in clerk-js's wire shapes: the
// options arrive as the JSON text of `verification.nonce` (base64url fields, no `{publicKey}`
// wrapper), are turned into the ArrayBuffers `navigator.credentials` wants, and the browser's
// answer goes back as `public_key_credential`, JSON with base64url fields. `Auth` exposes these
// as `signInWithPasskey`, `addPasskey`, `passkeys`, `renamePasskey` and `removePasskey`.

import { LatchkeyError, type Wire, type WireClient, type WireSignIn } from './fapi.js';

/** The part of `navigator.credentials` passkeys use; injectable (tests, embedded webviews). */
export interface PasskeyCredentials {
  create(options: CredentialCreationOptions): Promise<Credential | null>;
  get(options: CredentialRequestOptions): Promise<Credential | null>;
}

/** One of the signed-in user's passkeys. */
export interface Passkey {
  id: string;
  name: string;
  /** When it last signed in (ms since the epoch), `null` before its first use. */
  lastUsedAt: number | null;
}

/**
 * What `signInWithPasskey()` ended with:
 * - `signed-in`: this client's session is active;
 * - `needs-second-factor`: the passkey proved the first factor and the account's authenticator
 *   app or a backup code comes next (latchkey's `[passkeys] satisfies_second_factor = false`);
 * - `cancelled`: the person chose no passkey (closed the browser's dialog, or this device holds
 *   none for this site), or `signal` stopped the request;
 * - `unsupported`: this browser has no WebAuthn (or, for `autofill`, no autofill of passkeys).
 */
export type PasskeySignInResult =
  | { status: 'signed-in' }
  | { status: 'needs-second-factor' }
  | { status: 'cancelled' }
  | { status: 'unsupported' };

export interface PasskeySignInOptions {
  /**
   * Offer the passkeys in the browser's autofill of the identifier field (conditional
   * mediation): the field needs `autocomplete="username webauthn"`. The promise waits until a
   * passkey is picked there; abort `signal` before starting another sign-in.
   */
  autofill?: boolean;
  signal?: AbortSignal;
}

/** What `Auth` lends the passkey calls: its wire and its client bookkeeping. */
export interface PasskeyHost {
  wire: Wire;
  credentials: PasskeyCredentials | null;
  adopt(client: WireClient | null): void;
  load(): Promise<void>;
  sessionId(): string;
}

interface WirePasskey {
  id: string;
  name: string;
  last_used_at?: number | null;
  verification?: { status: string; nonce?: string | null } | null;
}

export function decodeBase64Url(text: string): ArrayBuffer {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
}

export function encodeBase64Url(buffer: ArrayBuffer | ArrayBufferView): string {
  const bytes = buffer instanceof ArrayBuffer ? new Uint8Array(buffer) : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  let raw = '';
  for (const byte of bytes) raw += String.fromCharCode(byte);
  return btoa(raw).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

type Descriptor = { id: string; type: string; transports?: string[] };
const withIds = (list?: Descriptor[]) => (list ?? []).map((c) => ({ ...c, id: decodeBase64Url(c.id) })) as PublicKeyCredentialDescriptor[];

/** The sign-in's `nonce` as `navigator.credentials.get`'s `publicKey`. */
export function requestOptions(nonce: string): PublicKeyCredentialRequestOptions {
  const o = JSON.parse(nonce);
  return { ...o, challenge: decodeBase64Url(o.challenge), allowCredentials: withIds(o.allowCredentials) };
}

/** A registration's `nonce` as `navigator.credentials.create`'s `publicKey`. */
export function creationOptions(nonce: string): PublicKeyCredentialCreationOptions {
  const o = JSON.parse(nonce);
  return {
    ...o,
    challenge: decodeBase64Url(o.challenge),
    user: { ...o.user, id: decodeBase64Url(o.user.id) },
    excludeCredentials: withIds(o.excludeCredentials),
  };
}

/** The browser's answer as the JSON text clerk-js posts as `public_key_credential`. */
export function credentialJson(credential: Credential): string {
  const c = credential as PublicKeyCredential;
  const r = c.response as AuthenticatorAttestationResponse & AuthenticatorAssertionResponse;
  const response: Record<string, unknown> = { clientDataJSON: encodeBase64Url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = encodeBase64Url(r.attestationObject);
    response.transports = r.getTransports?.() ?? [];
  } else {
    response.authenticatorData = encodeBase64Url(r.authenticatorData);
    response.signature = encodeBase64Url(r.signature);
    if (r.userHandle) response.userHandle = encodeBase64Url(r.userHandle);
  }
  return JSON.stringify({
    type: c.type,
    id: c.id,
    rawId: encodeBase64Url(c.rawId),
    authenticatorAttachment: c.authenticatorAttachment ?? null,
    response,
  });
}

/** `navigator.credentials` when this is a browser with WebAuthn. */
export function browserCredentials(): PasskeyCredentials | null {
  if (typeof navigator === 'undefined' || typeof PublicKeyCredential === 'undefined' || !navigator.credentials) return null;
  return navigator.credentials;
}

async function autofillAvailable(): Promise<boolean> {
  if (typeof PublicKeyCredential === 'undefined' || !PublicKeyCredential.isConditionalMediationAvailable) return false;
  return PublicKeyCredential.isConditionalMediationAvailable().catch(() => false);
}

const cancelled = (e: unknown) => e instanceof Error && (e.name === 'NotAllowedError' || e.name === 'AbortError');

export async function signInWithPasskey(host: PasskeyHost, options: PasskeySignInOptions): Promise<PasskeySignInResult> {
  const { signal } = options;
  if (signal?.aborted) return { status: 'cancelled' };
  const credentials = host.credentials;
  if (!credentials) return { status: 'unsupported' };
  // Injected credentials (no `PublicKeyCredential` here) are trusted to do autofill.
  if (options.autofill && typeof PublicKeyCredential !== 'undefined' && !(await autofillAvailable())) {
    return { status: 'unsupported' };
  }
  const { response: started, client } = await host.wire.call<WireSignIn>('POST', '/v1/client/sign_ins', { strategy: 'passkey' });
  host.adopt(client);
  const nonce = (started.first_factor_verification as { nonce?: string | null } | null | undefined)?.nonce;
  if (!nonce) {
    throw new LatchkeyError(500, { code: 'passkey_options_missing', message: 'latchkey gave no passkey options for this sign-in.' });
  }
  let credential: Credential | null;
  try {
    credential = await credentials.get({
      publicKey: requestOptions(nonce),
      mediation: options.autofill ? 'conditional' : 'optional',
      signal,
    } as CredentialRequestOptions);
  } catch (e) {
    if (cancelled(e) || signal?.aborted) return { status: 'cancelled' };
    throw e;
  }
  if (!credential) return { status: 'cancelled' };
  const { response: done, client: after } = await host.wire.call<WireSignIn>(
    'POST',
    `/v1/client/sign_ins/${encodeURIComponent(started.id)}/attempt_first_factor`,
    { strategy: 'passkey', public_key_credential: credentialJson(credential) },
  );
  host.adopt(after);
  if (done.status === 'complete') return { status: 'signed-in' };
  if (done.status === 'needs_second_factor') return { status: 'needs-second-factor' };
  throw new LatchkeyError(500, { code: 'sign_in_incomplete', message: `The passkey sign-in is ${done.status}.` });
}

function toPasskey(p: WirePasskey): Passkey {
  return { id: p.id, name: p.name, lastUsedAt: p.last_used_at ?? null };
}

const me = (host: PasskeyHost, path: string) => `/v1/me${path}?_clerk_session_id=${encodeURIComponent(host.sessionId())}`;

export async function addPasskey(host: PasskeyHost): Promise<Passkey> {
  const credentials = host.credentials;
  if (!credentials) {
    throw new LatchkeyError(400, { code: 'passkeys_unsupported', message: 'This browser cannot make passkeys.' });
  }
  const { response: started } = await host.wire.call<WirePasskey>('POST', me(host, '/passkeys'));
  const nonce = started.verification?.nonce;
  if (!nonce) {
    throw new LatchkeyError(500, { code: 'passkey_options_missing', message: 'latchkey gave no passkey options.' });
  }
  let credential: Credential | null;
  try {
    credential = await credentials.create({ publicKey: creationOptions(nonce) });
  } catch (e) {
    if (!cancelled(e)) throw e;
    credential = null;
  }
  if (!credential) {
    throw new LatchkeyError(400, {
      code: 'passkey_registration_cancelled',
      message: 'No passkey was made: the request was cancelled or timed out.',
    });
  }
  const { response } = await host.wire.call<WirePasskey>('POST', me(host, `/passkeys/${encodeURIComponent(started.id)}/attempt_verification`), {
    strategy: 'passkey',
    public_key_credential: credentialJson(credential),
  });
  await host.load();
  return toPasskey(response);
}

export async function listPasskeys(host: PasskeyHost): Promise<Passkey[]> {
  const { response } = await host.wire.call<{ passkeys?: WirePasskey[] | null }>('GET', me(host, ''));
  return (response.passkeys ?? []).map(toPasskey);
}

export async function renamePasskey(host: PasskeyHost, id: string, name: string): Promise<Passkey> {
  const { response } = await host.wire.call<WirePasskey>('PATCH', me(host, `/passkeys/${encodeURIComponent(id)}`), { name });
  return toPasskey(response);
}

export async function removePasskey(host: PasskeyHost, id: string): Promise<void> {
  await host.wire.call('DELETE', me(host, `/passkeys/${encodeURIComponent(id)}`));
  await host.load();
}
