// Sign-up, sign-in, sessions, organizations and session tokens over the Frontend API.
// `getToken()` refreshes ahead of expiry, one refresh at a time: in a tab through a shared
// promise, across tabs through a Web Lock, and a token one tab fetched reaches the others on a
// BroadcastChannel, so tabs never race each other into signing out.

import {
  LatchkeyError,
  Wire,
  type WireClient,
  type WireMembership,
  type WireOptions,
  type WireEnvironment,
  type WireError,
  type WireSession,
  type WireSignIn,
  type WireSignUp,
  type WireUser,
} from './fapi.js';
import {
  addPasskey,
  browserCredentials,
  listPasskeys,
  removePasskey,
  renamePasskey,
  signInWithPasskey,
  type Passkey,
  type PasskeyCredentials,
  type PasskeyHost,
  type PasskeySignInOptions,
  type PasskeySignInResult,
} from './passkeys.js';
import { confirmPassword, deleteAccount, downloadMyData, type AccountHost, type DataExport } from './account.js';

/** Refresh when less than this is left (latchkey's tokens live 60 s). */
export const REFRESH_AHEAD_MS = 20_000;

/** Clerk's first factor of "Forgot password?". */
const RESET = 'reset_password_email_code';
/** Clerk's strategy of a sign-in link mailed to the address. */
const EMAIL_LINK = 'email_link';
/** How often `signInWithEmailLink` asks whether the link was opened (clerk-js: every second). */
export const EMAIL_LINK_POLL_MS = 1_000;

export interface Organization {
  id: string;
  name: string;
  slug: string;
  role: string;
  permissions: string[];
}

export interface User {
  id: string;
  firstName: string | null;
  lastName: string | null;
  emailAddress: string | null;
  organizations: Organization[];
}

/** An identity provider latchkey offers ("Continue with <name>"). */
export interface SocialProvider {
  /** Clerk's strategy: `oauth_google`, `oauth_custom_<key>`, … */
  strategy: string;
  /** The button's label: "Continue with <name>". */
  name: string;
  logoUrl: string | null;
}

/**
 * What `handleRedirectCallback()` found on the way back from an identity provider:
 * - `signed-in`: a session is active (an existing account, or a newcomer's account made at once);
 * - `needs-email-code`: a newcomer whose address the provider does not vouch for; latchkey mailed
 *   a code to `emailAddress`: finish with `verifyEmailCode(code)`;
 * - `missing-requirements`: the new account needs more than the address (`missingFields`);
 * - `failed`: nobody signed in, with latchkey's reason (`oauth_access_denied` when the person
 *   said no at the provider, `oauth_sign_up_disabled`, `oauth_token_exchange_error`, …);
 * - `none`: no provider sign-in to finish on this client (a reload after it was handled).
 */
export type RedirectResult =
  | { status: 'signed-in'; strategy: string | null }
  | { status: 'needs-email-code'; strategy: string | null; emailAddress: string | null }
  | { status: 'missing-requirements'; strategy: string | null; missingFields: string[]; unverifiedFields: string[] }
  | { status: 'failed'; strategy: string | null; error: { code: string; message: string } }
  | { status: 'none' };

/**
 * What `signInWithEmailLink()` ended with:
 * - `signed-in`: the link was opened (in this browser or, confirmed, in another one) and this
 *   client's session is active;
 * - `needs-second-factor`: the link proved the address, and the account's authenticator app or a
 *   backup code comes next (latchkey's hosted `/sign-in/factor-two` asks for it);
 * - `expired`: nobody opened the link within its 10 minutes;
 * - `cancelled`: the caller's `signal` stopped the wait.
 */
export type EmailLinkResult =
  | { status: 'signed-in' }
  | { status: 'needs-second-factor' }
  | { status: 'expired' }
  | { status: 'cancelled' };

export interface EmailLinkOptions {
  emailAddress: string;
  /**
   * The page the link leads to; latchkey adds Clerk's `__clerk_status` to its query (read it
   * with `emailLinkStatus`). On latchkey's origin or an allowed one; a path is the calling
   * page's.
   */
  redirectUrl: string;
  /** Stops waiting: the promise resolves `{ status: 'cancelled' }`. */
  signal?: AbortSignal;
  /** The link is mailed (or, for an address with no account, would be): show "Check your email". */
  onEmailSent?: (sent: { emailAddress: string; expiresAt: number | null }) => void;
  /** Between two polls; `EMAIL_LINK_POLL_MS` when omitted. */
  pollIntervalMs?: number;
}

/** Clerk's parameters on the page an email link led to, when it has them. */
export interface EmailLinkStatus {
  /** `verified`, `expired`, `failed` or `client_mismatch`. */
  status: string;
  /** The session the link made in this browser, when its own sign-in completed. */
  createdSessionId: string | null;
}

/** Reads `__clerk_status` (and `__clerk_created_session`) from `url`: `null` when absent. */
export function emailLinkStatus(url: string | URL): EmailLinkStatus | null {
  const query = new URL(url).searchParams;
  const status = query.get('__clerk_status');
  return status ? { status, createdSessionId: query.get('__clerk_created_session') } : null;
}

/** How latchkey offers to sign in (its environment): identity providers, email links. */
export interface SignInMethods {
  providers: SocialProvider[];
  emailLink: boolean;
  /** Passkeys are on (`[passkeys] enabled`): `signInWithPasskey`, `addPasskey`. */
  passkey: boolean;
}

export interface AuthOptions extends WireOptions {
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number;
  /** Sends the browser to a URL (`signInWith`); `location.assign` when omitted. */
  navigate?: (url: string) => void;
  /** Name of the cross-tab lock and channel (one per latchkey instance and app). */
  channelName?: string;
  /** Where passkeys are made and used; the browser's `navigator.credentials` when omitted. */
  credentials?: PasskeyCredentials;
}

interface CachedToken {
  sessionId: string;
  organizationId: string | null;
  jwt: string;
  expiresAt: number;
}

type Listener = () => void;

/** An open password reset: its sign-in attempt, and whether its code was accepted. */
interface PendingReset {
  signInId: string;
  proven: boolean;
}

export class Auth {
  readonly wire: Wire;
  private client: WireClient | null = null;
  private token: CachedToken | null = null;
  private inflight: Promise<string | null> | null = null;
  private signUpId: string | null = null;
  private reset: PendingReset | null = null;
  private readonly listeners = new Set<Listener>();
  private readonly deletedListeners = new Set<() => Promise<void> | void>();
  private readonly now: () => number;
  private readonly navigate: (url: string) => void;
  private readonly lockName: string;
  private readonly channel: BroadcastChannel | null;
  private readonly credentials: PasskeyCredentials | null;

  constructor(options: AuthOptions = {}) {
    this.wire = new Wire(options);
    this.now = options.now ?? Date.now;
    this.navigate = options.navigate ?? ((url) => location.assign(url));
    this.lockName = options.channelName ?? 'latchkey:token';
    this.credentials = options.credentials ?? browserCredentials();
    this.channel = typeof BroadcastChannel !== 'undefined' ? new BroadcastChannel(this.lockName) : null;
    this.channel?.addEventListener('message', (event: MessageEvent) => this.receive(event.data));
  }

  /** Reads the client (its sessions) from latchkey. */
  async load(): Promise<void> {
    const { response } = await this.wire.call<WireClient | null>('GET', '/v1/client');
    this.adopt(response);
  }

  /** Stops listening to other tabs. */
  close(): void {
    this.channel?.close();
  }

  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get session(): WireSession | null {
    const c = this.client;
    if (!c) return null;
    return c.sessions.find((s) => s.id === c.last_active_session_id) ?? c.sessions[0] ?? null;
  }

  get isSignedIn(): boolean {
    return this.session !== null;
  }

  /** The signed-in user's id (what the sync engine reads of an `Auth`: it is a `TokenSource`). */
  get userId(): string | null {
    return this.session?.user.id ?? null;
  }

  get user(): User | null {
    const u = this.session?.user;
    return u ? toUser(u) : null;
  }

  /** The session's active organization, `null` for the personal account. */
  get organizationId(): string | null {
    return this.session?.last_active_organization_id ?? null;
  }

  /** Starts a sign-up; latchkey mails the verification code at once. */
  async signUp(input: { emailAddress: string; password: string; firstName?: string; lastName?: string }): Promise<void> {
    const { response, client } = await this.wire.call<{ id: string }>('POST', '/v1/client/sign_ups', {
      email_address: input.emailAddress,
      password: input.password,
      first_name: input.firstName,
      last_name: input.lastName,
    });
    this.signUpId = response.id;
    this.adopt(client);
  }

  /** Finishes the sign-up with the mailed code; signed in afterwards. */
  async verifyEmailCode(code: string): Promise<void> {
    const id = this.signUpId ?? (this.client?.sign_up as { id?: string } | null)?.id;
    if (!id) throw new LatchkeyError(400, { code: 'sign_up_missing', message: 'Start a sign-up first.' });
    const { client } = await this.wire.call('POST', `/v1/client/sign_ups/${id}/attempt_verification`, {
      strategy: 'email_code',
      code,
    });
    this.signUpId = null;
    this.adopt(client);
  }

  async signIn(input: { identifier: string; password: string }): Promise<void> {
    const { client } = await this.wire.call('POST', '/v1/client/sign_ins', {
      identifier: input.identifier,
      password: input.password,
      strategy: 'password',
    });
    this.adopt(client);
  }

  /**
   * "Forgot password?", step 1: starts a sign-in with the address and has latchkey mail a reset
   * code. It resolves alike whether or not an account has the address (latchkey answers a
   * stranger the same way), so say "if an account exists, a code is on its way". Calling it
   * again starts over with a new code. Call it signed out: latchkey is single-session and
   * refuses a signed-in client (`session_exists`). Step 2 is `completePasswordReset`.
   */
  async resetPassword(input: { emailAddress: string }): Promise<void> {
    this.reset = null;
    const { response: signIn } = await this.wire.call<WireSignIn>('POST', '/v1/client/sign_ins', {
      identifier: input.emailAddress,
    });
    const factor = signIn.supported_first_factors?.find((f) => f.strategy === RESET);
    const { client } = await this.wire.call('POST', `/v1/client/sign_ins/${signIn.id}/prepare_first_factor`, {
      strategy: RESET,
      email_address_id: factor?.email_address_id ?? undefined,
    });
    this.reset = { signInId: signIn.id, proven: false };
    this.adopt(client);
  }

  /**
   * "Forgot password?", step 2: proves the mailed code and sets the new password; signed in
   * afterwards, as after `signIn`. `signOutOfOtherSessions` ends the account's other sessions
   * (latchkey ends them anyway when the account was locked). A wrong code
   * (`form_code_incorrect`) or a refused password (`form_password_pwned`,
   * `form_password_length_too_short`, `form_new_password_matches_current`, …) throws and
   * leaves the reset open: call again; a code once accepted is not sent again.
   * Throws `password_reset_missing` when no reset was started.
   */
  async completePasswordReset(input: { code: string; password: string; signOutOfOtherSessions?: boolean }): Promise<void> {
    const reset = this.pendingReset();
    if (!reset) {
      throw new LatchkeyError(400, {
        code: 'password_reset_missing',
        message: 'Start a password reset first: resetPassword({ emailAddress }).',
      });
    }
    const path = `/v1/client/sign_ins/${reset.signInId}`;
    if (!reset.proven) {
      const { response } = await this.wire.call<WireSignIn>('POST', `${path}/attempt_first_factor`, {
        strategy: RESET,
        code: input.code,
      });
      reset.proven = response.status === 'needs_new_password';
      this.reset = reset;
    }
    const { client } = await this.wire.call('POST', `${path}/reset_password`, {
      password: input.password,
      sign_out_of_other_sessions: input.signOutOfOtherSessions ? true : undefined,
    });
    this.reset = null;
    this.adopt(client);
  }

  /** The reset this object started, or the client's open one (after a page reload). */
  private pendingReset(): PendingReset | null {
    if (this.reset) return this.reset;
    const s = this.client?.sign_in as WireSignIn | null | undefined;
    if (!s || s.status === 'complete' || s.first_factor_verification?.strategy !== RESET) return null;
    return { signInId: s.id, proven: s.status === 'needs_new_password' };
  }

  /**
   * The identity providers latchkey offers (`GET /v1/environment`, `user_settings.social`), the
   * enabled ones, in latchkey's order; empty when none is configured.
   */
  async socialProviders(): Promise<SocialProvider[]> {
    return (await this.signInMethods()).providers;
  }

  /**
   * Every way in latchkey offers besides the password (`GET /v1/environment`): its identity
   * providers, as `socialProviders()` lists them, whether it mails sign-in links
   * (`[email_links] sign_in`, for `signInWithEmailLink`) and whether passkeys are on.
   */
  async signInMethods(): Promise<SignInMethods> {
    const { response } = await this.wire.call<WireEnvironment>('GET', '/v1/environment');
    const settings = response?.user_settings;
    const providers = Object.values(settings?.social ?? {})
      .filter((p) => p && p.enabled)
      .map((p) => ({ strategy: p.strategy, name: p.name, logoUrl: p.logo_url ?? null }));
    const emailLink = settings?.attributes?.email_address?.first_factors?.includes(EMAIL_LINK) ?? false;
    const passkey = settings?.attributes?.passkey?.enabled ?? false;
    return { providers, emailLink, passkey };
  }

  /**
   * "Email me a sign-in link": starts a sign-in with the address, has latchkey mail it a link
   * (`prepare_first_factor`, `strategy=email_link`), then asks every `pollIntervalMs` whether
   * the link was opened (`GET /v1/client/sign_ins/{id}`). Opened in this browser, the link
   * completes the sign-in at once; opened and confirmed in another browser, the poll completes
   * it here, for this client. Then the session is active, as after `signIn`.
   *
   * `onEmailSent` is called once the link is out. latchkey answers alike whether or not an
   * account has the address (and mails nothing for a stranger), so say "check your email".
   * Expected outcomes are results (see `EmailLinkResult`), including cancellation by `signal`;
   * a refusal to start (`session_exists` on a signed-in client, a malformed address, a spent
   * mail budget, `strategy_for_user_invalid` where links are off) throws, as `signIn` does.
   */
  async signInWithEmailLink(options: EmailLinkOptions): Promise<EmailLinkResult> {
    const { signal } = options;
    if (signal?.aborted) return { status: 'cancelled' };
    const { response: started, client } = await this.wire.call<WireSignIn>('POST', '/v1/client/sign_ins', {
      identifier: options.emailAddress,
    });
    this.adopt(client);
    const factor = started.supported_first_factors?.find((f) => f.strategy === EMAIL_LINK);
    if (!factor) {
      throw new LatchkeyError(422, {
        code: 'strategy_for_user_invalid',
        message: 'latchkey does not offer sign-in links for this identifier.',
        meta: { param_name: 'strategy' },
      });
    }
    const { response: prepared } = await this.wire.call<WireSignIn>(
      'POST',
      `/v1/client/sign_ins/${started.id}/prepare_first_factor`,
      { strategy: EMAIL_LINK, email_address_id: factor.email_address_id ?? undefined, redirect_url: options.redirectUrl },
    );
    const expiresAt = prepared.first_factor_verification?.expire_at ?? null;
    options.onEmailSent?.({ emailAddress: options.emailAddress, expiresAt });
    return this.awaitEmailLink(started.id, expiresAt, options);
  }

  /** Polls the link's sign-in until it is complete, expired, or the wait is cancelled. */
  private async awaitEmailLink(id: string, expiresAt: number | null, options: EmailLinkOptions): Promise<EmailLinkResult> {
    const interval = options.pollIntervalMs ?? EMAIL_LINK_POLL_MS;
    for (;;) {
      if (await pause(interval, options.signal)) return { status: 'cancelled' };
      let signIn: WireSignIn;
      let client: WireClient | null;
      try {
        ({ response: signIn, client } = await this.wire.call<WireSignIn>('GET', `/v1/client/sign_ins/${id}`));
      } catch (e) {
        if (!(e instanceof LatchkeyError) || e.status >= 500 || e.status === 429) {
          // Offline for a moment, or latchkey busy: ask again at the next tick.
          if (expiresAt !== null && this.now() >= expiresAt) return { status: 'expired' };
          continue;
        }
        if (e.status !== 401) throw e;
        // The link opened in another tab of this browser renewed the client's cookie while this
        // request carried the old one: the client, read again, is signed in.
        await this.load().catch(() => undefined);
        if (this.isSignedIn) return { status: 'signed-in' };
        continue;
      }
      // Whatever the caller decided meanwhile, a completed sign-in is this client's now.
      if (signIn.status === 'complete') {
        this.adopt(client);
        return { status: 'signed-in' };
      }
      if (signIn.status === 'needs_second_factor') {
        this.adopt(client);
        return { status: 'needs-second-factor' };
      }
      if (options.signal?.aborted) return { status: 'cancelled' };
      if (expiresAt !== null && this.now() >= expiresAt) return { status: 'expired' };
    }
  }

  /**
   * "Continue with <provider>": starts a provider sign-in (`strategy` is `oauth_google`,
   * `oauth_custom_<key>`, … from `socialProviders()`) and sends the browser to the provider. It
   * comes back to `redirectUrl` (the page that calls `handleRedirectCallback()`), or straight to
   * `redirectUrlComplete` when an account was signed in at once. Both must be on latchkey's
   * origin or an allowed one (a path is the calling page's). Resolves with the provider's URL
   * once the browser was sent there. Refusals throw, as `signIn` does: a strategy latchkey does
   * not offer (`strategy_for_user_invalid`), a provider it cannot reach
   * (`oauth_provider_unavailable`), a signed-in client (`session_exists`).
   */
  async signInWith(strategy: string, options: { redirectUrl: string; redirectUrlComplete?: string }): Promise<string> {
    const { response, client } = await this.wire.call<WireSignIn>('POST', '/v1/client/sign_ins', {
      strategy,
      redirect_url: options.redirectUrl,
      action_complete_redirect_url: options.redirectUrlComplete,
    });
    this.adopt(client);
    const url = response.first_factor_verification?.external_verification_redirect_url;
    if (!url) {
      throw new LatchkeyError(500, { code: 'external_verification_missing', message: 'latchkey gave no provider URL for this sign-in.' });
    }
    this.navigate(url);
    return url;
  }

  /**
   * The way back from the provider: call it on the page at `signInWith`'s `redirectUrl`. Reads
   * the client; a newcomer's sign-in (the provider's person has no account here) is taken over
   * as a sign-up (`transfer=true`). Expected outcomes are results, not exceptions (see
   * `RedirectResult`); only a network failure or an unexpected answer throws.
   */
  async handleRedirectCallback(): Promise<RedirectResult> {
    await this.load();
    if (this.isSignedIn) return { status: 'signed-in', strategy: this.providerStrategy() };
    const signIn = this.client?.sign_in;
    const verification = signIn?.first_factor_verification;
    if (!signIn || !verification?.strategy.startsWith('oauth_')) return { status: 'none' };
    const strategy = verification.strategy;
    switch (verification.status) {
      case 'transferable':
        return this.transfer(strategy);
      case 'transferred': {
        // Taken over already (a reload of the page): the sign-up may still want its code.
        const signUp = this.client?.sign_up;
        return signUp?.status === 'missing_requirements' ? this.requirements(signUp, strategy) : { status: 'none' };
      }
      case 'failed':
      case 'expired':
        return { status: 'failed', strategy, error: errorOf(verification.error, verification.status) };
      default:
        return { status: 'none' };
    }
  }

  private async transfer(strategy: string): Promise<RedirectResult> {
    let signUp: WireSignUp;
    try {
      const { response, client } = await this.wire.call<WireSignUp>('POST', '/v1/client/sign_ups', { transfer: true });
      signUp = response;
      this.adopt(client);
    } catch (e) {
      // Refused by latchkey (sign-ups closed for this provider, the attempt spent or expired).
      if (e instanceof LatchkeyError && e.status >= 400 && e.status < 500) {
        return { status: 'failed', strategy, error: { code: e.code, message: e.message } };
      }
      throw e;
    }
    if (this.isSignedIn) return { status: 'signed-in', strategy };
    if (signUp.status === 'missing_requirements') return this.requirements(signUp, strategy);
    return { status: 'failed', strategy, error: { code: 'sign_up_incomplete', message: `The new account is ${signUp.status}.` } };
  }

  private requirements(signUp: WireSignUp, strategy: string): RedirectResult {
    this.signUpId = signUp.id;
    const missingFields = signUp.missing_fields ?? [];
    const unverifiedFields = signUp.unverified_fields ?? [];
    if (missingFields.length === 0 && signUp.verifications?.email_address?.status === 'unverified') {
      return { status: 'needs-email-code', strategy, emailAddress: signUp.email_address ?? null };
    }
    return { status: 'missing-requirements', strategy, missingFields, unverifiedFields };
  }

  /** The provider of the client's last sign-in or sign-up, if it was one. */
  private providerStrategy(): string | null {
    const c = this.client;
    const s = c?.sign_in?.first_factor_verification?.strategy ?? c?.sign_up?.verifications?.external_account?.strategy;
    return s?.startsWith('oauth_') ? s : null;
  }

  /**
   * "Sign in with a passkey" (`[passkeys]` on, see `signInMethods().passkey`): starts a sign-in
   * without an identifier, asks the browser for one of this site's passkeys and posts its answer.
   * With `autofill`, the request waits in the identifier field's autofill instead of a dialog.
   * Expected outcomes are results (see `PasskeySignInResult`); a passkey latchkey refuses (not
   * this site's, removed, a counter that went back) throws `verification_failed`.
   */
  signInWithPasskey(options: PasskeySignInOptions = {}): Promise<PasskeySignInResult> {
    return signInWithPasskey(this.passkeyHost(), options);
  }

  /**
   * Makes a passkey on this device for the signed-in user and stores it. latchkey asks for a
   * recent check first (403 `session_reverification_required` once the session is 10 minutes
   * old: sign in again, or confirm on the hosted `/user`); a person who closes the browser's
   * dialog gets `passkey_registration_cancelled`.
   */
  addPasskey(): Promise<Passkey> {
    return addPasskey(this.passkeyHost());
  }

  /** The signed-in user's passkeys. */
  passkeys(): Promise<Passkey[]> {
    return listPasskeys(this.passkeyHost());
  }

  renamePasskey(id: string, name: string): Promise<Passkey> {
    return renamePasskey(this.passkeyHost(), id, name);
  }

  /** Removes a passkey (after a recent check, as `addPasskey`). */
  removePasskey(id: string): Promise<void> {
    return removePasskey(this.passkeyHost(), id);
  }

  private passkeyHost(): PasskeyHost {
    return {
      wire: this.wire,
      credentials: this.credentials,
      adopt: (client) => this.adopt(client),
      load: () => this.load(),
      sessionId: () => this.requireSession().id,
    };
  }

  /** Everything latchkey holds about the signed-in person, as a file and parsed (docs/account-data.md). */
  downloadMyData(): Promise<{ blob: Blob; data: DataExport }> {
    return downloadMyData(this.accountHost());
  }

  /** A recent check with the password: for ten minutes the session may delete the account. */
  confirmPassword(password: string): Promise<void> {
    return confirmPassword(this.accountHost(), password);
  }

  /**
   * Deletes the signed-in person's account (after `confirmPassword`, or with `password` to
   * make that check first). Once latchkey has deleted it, this device is signed out and every
   * `onAccountDeleted` listener has run (a `SyncEngine` on this `Auth` clears the local
   * database in it) before the promise resolves.
   */
  async deleteAccount(options: { password?: string } = {}): Promise<void> {
    await deleteAccount(this.accountHost(), options);
    await Promise.all([...this.deletedListeners].map(async (l) => l()));
  }

  /** Calls `listener` when the signed-in person deleted their account on this device. */
  onAccountDeleted(listener: () => Promise<void> | void): () => void {
    this.deletedListeners.add(listener);
    return () => this.deletedListeners.delete(listener);
  }

  private accountHost(): AccountHost {
    return { wire: this.wire, adopt: (client) => this.adopt(client), sessionId: () => this.requireSession().id };
  }

  /** Ends every session of this client (the device stays known). */
  async signOut(): Promise<void> {
    const { client } = await this.wire.call('DELETE', '/v1/client/sessions');
    this.adopt(client);
  }

  /** The user's active sessions on every device. */
  async activeSessions(): Promise<{ id: string; lastActiveAt: number }[]> {
    const sid = this.requireSession().id;
    const { response } = await this.wire.call<{ id: string; last_active_at: number }[]>(
      'GET',
      `/v1/me/sessions/active?_clerk_session_id=${sid}`,
    );
    return response.map((s) => ({ id: s.id, lastActiveAt: s.last_active_at }));
  }

  async createOrganization(name: string): Promise<Organization> {
    const sid = this.requireSession().id;
    const { response } = await this.wire.call<{ id: string; name: string; slug: string }>(
      'POST',
      `/v1/organizations?_clerk_session_id=${sid}`,
      { name },
    );
    await this.load();
    return this.user?.organizations.find((o) => o.id === response.id) ?? { ...response, role: 'org:admin', permissions: [] };
  }

  /** Invites someone by email into an organization (an admin's right). */
  async inviteToOrganization(organizationId: string, emailAddress: string, role = 'org:member'): Promise<void> {
    const sid = this.requireSession().id;
    await this.wire.call('POST', `/v1/organizations/${organizationId}/invitations?_clerk_session_id=${sid}`, {
      email_address: emailAddress,
      role,
    });
  }

  /** Makes an organization (or, with `null`, the personal account) the session's active one. */
  async setActiveOrganization(organizationId: string | null): Promise<void> {
    const sid = this.requireSession().id;
    const { response, client } = await this.wire.call<WireSession>('POST', `/v1/client/sessions/${sid}/touch`, {
      active_organization_id: organizationId ?? '',
      intent: 'select_org',
    });
    this.adopt(client);
    if (response.last_active_token?.jwt) this.remember(sid, response.last_active_organization_id, response.last_active_token.jwt);
  }

  /**
   * A session token valid for at least `REFRESH_AHEAD_MS`, or `null` when signed out.
   * `force` fetches a new one even if the cached token is still fresh (after a 401).
   */
  async getToken(options: { force?: boolean } = {}): Promise<string | null> {
    const session = this.session;
    if (!session) return null;
    if (!options.force && this.fresh(session)) return this.token!.jwt;
    if (!this.inflight) {
      const stale = this.token?.jwt;
      this.inflight = this.refreshAcrossTabs(session, options.force ? stale : undefined).finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  private fresh(session: WireSession): boolean {
    const t = this.token;
    return (
      t !== null &&
      t.sessionId === session.id &&
      t.organizationId === session.last_active_organization_id &&
      t.expiresAt - this.now() > REFRESH_AHEAD_MS
    );
  }

  private async refreshAcrossTabs(session: WireSession, stale?: string): Promise<string | null> {
    const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
    const refresh = async () => {
      // Another tab may have refreshed while this one waited for the lock.
      if (this.fresh(session) && this.token!.jwt !== stale) return this.token!.jwt;
      return this.fetchToken(session);
    };
    return locks ? locks.request(this.lockName, refresh) : refresh();
  }

  private async fetchToken(session: WireSession): Promise<string | null> {
    try {
      const { response } = await this.wire.call<{ jwt: string }>('POST', `/v1/client/sessions/${session.id}/tokens`);
      this.remember(session.id, session.last_active_organization_id, response.jwt);
      return response.jwt;
    } catch (e) {
      if (e instanceof LatchkeyError && (e.status === 401 || e.status === 404)) {
        // The session ended elsewhere (signed out, revoked): learn the client's real state.
        this.token = null;
        await this.load().catch(() => this.adopt(null));
        return null;
      }
      throw e;
    }
  }

  private remember(sessionId: string, organizationId: string | null, jwt: string): void {
    this.token = { sessionId, organizationId, jwt, expiresAt: expiryOf(jwt) };
    this.channel?.postMessage({ kind: 'token', token: this.token });
  }

  private receive(message: { kind?: string; token?: CachedToken }): void {
    if (message?.kind === 'token' && message.token) {
      const t = message.token;
      if (!this.token || t.expiresAt > this.token.expiresAt) this.token = t;
    } else if (message?.kind === 'client') {
      this.load().catch(() => undefined);
    }
  }

  private adopt(client: WireClient | null): void {
    const before = `${this.session?.id}:${this.organizationId}`;
    this.client = client;
    const s = this.session;
    if (s?.last_active_token?.jwt) this.remember(s.id, s.last_active_organization_id, s.last_active_token.jwt);
    if (!s) this.token = null;
    const after = `${this.session?.id}:${this.organizationId}`;
    if (before !== after) this.channel?.postMessage({ kind: 'client' });
    for (const l of this.listeners) l();
  }

  private requireSession(): WireSession {
    const s = this.session;
    if (!s) throw new LatchkeyError(401, { code: 'signed_out', message: 'Sign in first.' });
    return s;
  }
}

/** Waits `ms`; `true` when `signal` aborted the wait (at once if it had already). */
function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(true);
    const finish = (aborted: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(aborted);
    };
    const onAbort = () => finish(true);
    const timer = setTimeout(() => finish(false), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function errorOf(error: WireError | null | undefined, status: string): { code: string; message: string } {
  if (error) return { code: error.code, message: error.long_message || error.message };
  return status === 'expired'
    ? { code: 'verification_expired', message: 'The sign-in with the provider took too long; start again.' }
    : { code: 'oauth_failed', message: 'The sign-in with the provider failed.' };
}

function toUser(u: WireUser): User {
  const primary = u.email_addresses.find((e) => e.id === u.primary_email_address_id) ?? u.email_addresses[0];
  return {
    id: u.id,
    firstName: u.first_name,
    lastName: u.last_name,
    emailAddress: primary?.email_address ?? null,
    organizations: (u.organization_memberships ?? []).map((m: WireMembership) => ({
      id: m.organization.id,
      name: m.organization.name,
      slug: m.organization.slug,
      role: m.role,
      permissions: m.permissions,
    })),
  };
}

/** `exp` of a JWT, in ms (the SDK only reads it; latchkey and the app's backend verify it). */
export function expiryOf(jwt: string): number {
  const payload = jwt.split('.')[1] ?? '';
  const text = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
  const exp = Number(JSON.parse(text).exp);
  return Number.isFinite(exp) ? exp * 1000 : 0;
}
