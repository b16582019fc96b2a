// The wire of latchkey's Frontend API, which is Clerk's (docs/frontend-api.md §3): `/v1` paths,
// form bodies, PATCH/DELETE tunnelled as POST `?_method=`, the `{response, client}` envelope
// and Clerk's error shape. In a browser the client is the HttpOnly `__client` cookie; elsewhere
// (Node, native apps) it is a bearer client token kept in a `TokenStore`.

export interface WireError {
  code: string;
  message: string;
  long_message?: string;
  meta?: { param_name?: string; expected_seq?: number };
}

/** A refusal from latchkey, in Clerk's error shape. */
export class LatchkeyError extends Error {
  readonly status: number;
  readonly code: string;
  readonly paramName?: string;
  readonly retryAfterSecs?: number;
  /** The error's `meta`, for the callers that act on it (sync reads `expected_seq`). */
  readonly meta?: WireError['meta'];

  constructor(status: number, error: WireError, retryAfterSecs?: number) {
    super(error.long_message || error.message);
    this.name = 'LatchkeyError';
    this.status = status;
    this.code = error.code;
    this.paramName = error.meta?.param_name;
    this.meta = error.meta;
    this.retryAfterSecs = retryAfterSecs;
  }
}

/** Where a non-browser client keeps its client token between runs. */
export interface TokenStore {
  get(): string | null | Promise<string | null>;
  set(token: string | null): void | Promise<void>;
}

export interface WireOptions {
  /** latchkey's public URL; the page's origin when omitted. */
  baseUrl?: string;
  /** Use a bearer client token instead of cookies (Node, React Native, tests). */
  tokenStore?: TokenStore;
  fetch?: typeof fetch;
}

export type Form = Record<string, string | number | boolean | null | undefined | object>;

export interface Envelope<T> {
  response: T;
  client: WireClient | null;
}

export interface WireClient {
  id: string;
  sessions: WireSession[];
  sign_in: WireSignIn | null;
  sign_up: WireSignUp | null;
  last_active_session_id: string | null;
  updated_at: number;
}

export interface WireSignIn {
  id: string;
  status: string;
  supported_first_factors?: { strategy: string; safe_identifier?: string | null; email_address_id?: string | null }[];
  first_factor_verification?: WireVerification | null;
  created_session_id?: string | null;
}

export interface WireVerification {
  strategy: string;
  status: string;
  /** A code's or an email link's end of life (ms since the epoch, latchkey's clock). */
  expire_at?: number | null;
  /** An email link's: the client of the browser that opened it. */
  verified_at_client?: string | null;
  /** A provider sign-in's: where the browser goes to sign in at the provider. */
  external_verification_redirect_url?: string | null;
  error?: WireError | null;
}

export interface WireSignUp {
  id: string;
  status: string;
  email_address?: string | null;
  missing_fields?: string[];
  unverified_fields?: string[];
  created_session_id?: string | null;
  verifications?: {
    email_address?: { status: string; strategy?: string } | null;
    external_account?: { status: string; strategy?: string } | null;
  } | null;
}

/** One entry of the environment's `user_settings.social` (an identity provider). */
export interface WireSocialSetting {
  enabled: boolean;
  strategy: string;
  name: string;
  logo_url?: string | null;
}

export interface WireEnvironment {
  user_settings?: {
    social?: Record<string, WireSocialSetting> | null;
    /** `email_address.first_factors` lists `email_link` when sign-in links are on. */
    attributes?: {
      email_address?: { first_factors?: string[] | null } | null;
      passkey?: { enabled?: boolean } | null;
    } | null;
  } | null;
}

export interface WireSession {
  id: string;
  status: string;
  last_active_organization_id: string | null;
  last_active_token?: { jwt: string } | null;
  user: WireUser;
}

export interface WireUser {
  id: string;
  first_name: string | null;
  last_name: string | null;
  username: string | null;
  primary_email_address_id: string | null;
  email_addresses: { id: string; email_address: string; verification?: { status: string } }[];
  organization_memberships?: WireMembership[];
  public_metadata: Record<string, unknown>;
  unsafe_metadata: Record<string, unknown>;
}

export interface WireMembership {
  id: string;
  role: string;
  permissions: string[];
  organization: { id: string; name: string; slug: string };
}

export class Wire {
  private readonly base: string;
  private readonly store?: TokenStore;
  private readonly doFetch: typeof fetch;

  constructor(options: WireOptions = {}) {
    const origin = typeof location !== 'undefined' ? location.origin : '';
    this.base = (options.baseUrl ?? origin).replace(/\/+$/, '');
    this.store = options.tokenStore;
    this.doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  }

  url(path: string): string {
    return `${this.base}${path}`;
  }

  /** A request to latchkey with the configured `fetch` (sync calls and event streams use it too). */
  send(path: string, init: RequestInit): Promise<Response> {
    return this.doFetch(this.url(path), init);
  }

  /** Headers that name this client: its bearer token when not in a browser. */
  async authHeaders(): Promise<Record<string, string>> {
    const token = this.store ? await this.store.get() : null;
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  /**
   * Sends a request as this client: Clerk's `_method` for PATCH and DELETE, a form body, and in
   * native mode the bearer token (a new client's token, which latchkey hands out once in
   * `Authorization`, is kept).
   */
  private async asClient(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, form?: Form): Promise<Response> {
    const url = new URL(this.url(path), this.base || undefined);
    if (method === 'PATCH' || method === 'DELETE') url.searchParams.set('_method', method);
    if (this.store) url.searchParams.set('_is_native', '1');
    const headers: Record<string, string> = await this.authHeaders();
    let body: string | undefined;
    if (form && method !== 'GET') {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = encodeForm(form);
    }
    const res = await this.doFetch(url.toString(), {
      method: method === 'GET' ? 'GET' : 'POST',
      headers,
      body,
      credentials: this.store ? 'omit' : 'include',
    });
    if (this.store) {
      const issued = res.headers.get('authorization');
      if (issued) await this.store.set(issued.replace(/^Bearer\s+/i, ''));
    }
    return res;
  }

  /**
   * A request as this client (its cookie, or its bearer token in native mode) whose body the
   * caller reads itself (a download); a refusal throws as `call` does.
   */
  async fetchRaw(method: 'GET' | 'POST', path: string): Promise<Response> {
    const res = await this.asClient(method, path);
    if (!res.ok) throw refusal(res, await res.json().catch(() => null));
    return res;
  }

  async call<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, form?: Form): Promise<Envelope<T>> {
    const res = await this.asClient(method, path, form);
    const text = await res.text();
    const json = text ? JSON.parse(text) : null;
    if (!res.ok) throw refusal(res, json);
    // Bare responses (environment, tokens) have no envelope.
    if (json && typeof json === 'object' && 'response' in json) return json as Envelope<T>;
    return { response: json as T, client: null };
  }
}

/** Clerk's error body as a `LatchkeyError` (with `Retry-After` when latchkey sent one). */
function refusal(res: Response, json: { errors?: WireError[] } | null): LatchkeyError {
  const retry = Number(res.headers.get('retry-after')) || undefined;
  return new LatchkeyError(res.status, json?.errors?.[0] ?? { code: 'network_error', message: res.statusText }, retry);
}

function encodeForm(form: Form): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(form)) {
    if (value === undefined) continue;
    if (value === null) params.set(key, '');
    else if (typeof value === 'object') params.set(key, JSON.stringify(value));
    else params.set(key, String(value));
  }
  return params.toString();
}
