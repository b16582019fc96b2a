// A real OpenID Provider (panva's `oidc-provider`) on loopback, for latchkey's
// "Sign in with Google / any OIDC provider" integration tests.
//
//   node crates/latchkey/tests/it/oidc/provider.mjs '<config json>'
//
// Prints exactly one line to stdout once listening: {"issuer":"http://127.0.0.1:<port>"}
// Everything else goes to stderr. Exits on SIGTERM/SIGINT and when stdin reaches EOF
// (so spawn it with a piped stdin and keep the handle). See README.md beside this file.

import crypto from 'node:crypto';
import http from 'node:http';

// oidc-provider prints its NOTICEs with console.info (stdout). stdout is reserved for the
// single issuer line, so route every console method to stderr before loading it.
for (const m of ['log', 'info', 'debug']) {
  console[m] = (...args) => console.error(...args);
}
const writeStdout = (line) => process.stdout.write(`${line}\n`);
const log = (...args) => console.error('[oidc-fixture]', ...args);

const { default: Provider } = await import('oidc-provider');
const jose = await import('jose');

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

function fail(msg) {
  console.error(`[oidc-fixture] ${msg}`);
  process.exit(2);
}

let config;
try {
  config = JSON.parse(process.argv[2] ?? '{}');
} catch (err) {
  fail(`config argument is not valid JSON: ${err.message}`);
}
const clientsConfig = config.clients ?? [];
const accounts = config.accounts ?? [];
if (!Array.isArray(clientsConfig) || !Array.isArray(accounts)) fail('clients and accounts must be arrays');
for (const a of accounts) {
  if (typeof a.sub !== 'string' || !a.sub) fail(`account without a string sub: ${JSON.stringify(a)}`);
}
// Optional knobs (all default to the behaviour described in README.md).
const pkceRequired = config.pkce_required === true; // default: PKCE only verified when sent
const exitOnStdinEof = config.exit_on_stdin_eof !== false; // default: exit when stdin closes

const SCOPES = ['openid', 'email', 'profile'];
const CLAIMS = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name', 'given_name', 'family_name', 'picture'],
};

function findAccountByHint(hint) {
  return accounts.find((a) => a.sub === hint) ?? accounts.find((a) => a.email !== undefined && a.email === hint);
}

function accountClaims(a) {
  const name = a.name ?? ([a.given_name, a.family_name].filter(Boolean).join(' ') || undefined);
  const out = { sub: a.sub };
  for (const k of ['email', 'email_verified', 'given_name', 'family_name', 'picture']) {
    if (a[k] !== undefined) out[k] = a[k];
  }
  if (name !== undefined) out.name = name;
  return out;
}

// ---------------------------------------------------------------------------------------
// Keys: one RS256 signing key made at start (published in the JWKS), and one unpublished
// key with the same kid used only by the `bad_signature` tamper mode.
// ---------------------------------------------------------------------------------------

const kid = crypto.randomBytes(8).toString('hex');
const signing = await jose.generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
const rogue = await jose.generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
const signingJwk = { ...(await jose.exportJWK(signing.privateKey)), kid, alg: 'RS256', use: 'sig' };

// ---------------------------------------------------------------------------------------
// Control state (POST /__control)
// ---------------------------------------------------------------------------------------

const TAMPER_MODES = new Set(['wrong_aud', 'wrong_iss', 'expired', 'wrong_nonce', 'bad_signature', 'alg_none', 'none']);
const state = { tamper: null, down: false };
// Refresh token switches, shown with the state only while on (so the state's shape stays the
// same for whoever does not use them).
const refresh = { refresh_tokens: false, rotate_refresh_tokens: false };
const shownState = () => ({ ...state, ...Object.fromEntries(Object.entries(refresh).filter(([, on]) => on)) });
// Every grant the interaction saved, so `revoke_grants` can forget them all.
const grants = new Set();

async function tamperIdToken(idToken, mode) {
  const header = jose.decodeProtectedHeader(idToken);
  const payload = jose.decodeJwt(idToken);
  let key = signing.privateKey;
  switch (mode) {
    case 'wrong_aud':
      payload.aud = 'not-the-client-you-are-looking-for';
      break;
    case 'wrong_iss':
      payload.iss = 'http://127.0.0.1:1/not-the-issuer';
      break;
    case 'expired': {
      const now = Math.floor(Date.now() / 1000);
      const lifetime = typeof payload.exp === 'number' && typeof payload.iat === 'number' ? payload.exp - payload.iat : 3600;
      payload.exp = now - 3600;
      payload.iat = payload.exp - lifetime;
      if (typeof payload.auth_time === 'number' && payload.auth_time > payload.iat) payload.auth_time = payload.iat;
      break;
    }
    case 'wrong_nonce':
      payload.nonce = `tampered-${crypto.randomBytes(6).toString('hex')}`;
      break;
    case 'bad_signature':
      key = rogue.privateKey; // same header (same kid), key not in the JWKS
      break;
    case 'alg_none': {
      const h = jose.base64url.encode(JSON.stringify({ ...header, alg: 'none' }));
      const p = jose.base64url.encode(JSON.stringify(payload));
      return `${h}.${p}.`;
    }
    default:
      throw new Error(`unknown tamper mode ${mode}`);
  }
  return new jose.CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader(header)
    .sign(key);
}

async function readJsonBody(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 64 * 1024) throw new Error('body too large');
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text.trim() ? JSON.parse(text) : {};
}

// ---------------------------------------------------------------------------------------
// Server + provider
// ---------------------------------------------------------------------------------------

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: clientsConfig.map((c) => ({
    // refresh_token is allowed, but only issued with offline_access or `refresh_tokens` on.
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    // client_secret_basic and client_secret_post are interchangeable in oidc-provider 9:
    // a client registered with either is accepted with either.
    token_endpoint_auth_method: 'client_secret_basic',
    ...c,
  })),
  jwks: { keys: [signingJwk] },
  findAccount: async (_ctx, sub) => {
    const account = accounts.find((a) => a.sub === sub);
    if (!account) return undefined;
    return { accountId: sub, claims: async () => accountClaims(account) };
  },
  scopes: SCOPES,
  claims: CLAIMS,
  conformIdTokenClaims: false, // scope-requested claims go in the ID token too
  pkce: { required: () => pkceRequired },
  // oidc-provider's default (offline_access granted), or every time while `refresh_tokens` is on.
  issueRefreshToken: async (_ctx, client, source) =>
    client.grantTypeAllowed('refresh_token') && (refresh.refresh_tokens || source.scopes.has('offline_access')),
  // A confidential client's refresh token is kept (oidc-provider's default until 70 % of its
  // life) unless `rotate_refresh_tokens` is on: then each refresh consumes it for a new one.
  rotateRefreshToken: () => refresh.rotate_refresh_tokens,
  features: {
    devInteractions: { enabled: false },
  },
  interactions: {
    // absolute, so a client that does not resolve relative Locations still follows it
    url: (_ctx, interaction) => `${issuer}/interaction/${interaction.uid}`,
  },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    Grant: 3600,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
  },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  renderError: async (ctx, out, error) => {
    ctx.type = 'json';
    ctx.body = out;
    if (error) log('renderError', error.message ?? error);
  },
});

for (const ev of ['server_error', 'authorization.error', 'grant.error', 'userinfo.error', 'jwks.error', 'discovery.error']) {
  provider.on(ev, (...args) => {
    const err = args.find((a) => a instanceof Error);
    log(ev, err?.message ?? '', err?.error_description ?? '');
  });
}

const AUTH_PATH = '/auth';
const TOKEN_PATH = '/token';

provider.use(async (ctx, next) => {
  // --- fixture control ----------------------------------------------------------------
  if (ctx.path === '/__accounts' && ctx.method === 'GET') {
    ctx.body = accounts;
    return;
  }
  if (ctx.path === '/__control') {
    if (ctx.method === 'GET') {
      ctx.body = shownState();
      return;
    }
    if (ctx.method !== 'POST') {
      ctx.status = 405;
      return;
    }
    let body;
    try {
      body = await readJsonBody(ctx.req);
    } catch (err) {
      ctx.status = 400;
      ctx.body = { error: `bad JSON: ${err.message}` };
      return;
    }
    if ('tamper' in body) {
      if (!TAMPER_MODES.has(body.tamper)) {
        ctx.status = 400;
        ctx.body = { error: `unknown tamper mode ${JSON.stringify(body.tamper)}`, modes: [...TAMPER_MODES] };
        return;
      }
      state.tamper = body.tamper === 'none' ? null : body.tamper;
    }
    if ('down' in body) state.down = body.down === true;
    for (const key of Object.keys(refresh)) {
      if (key in body) refresh[key] = body[key] === true;
    }
    if (body.revoke_grants === true) {
      // Forgotten grants: their refresh tokens are refused (invalid_grant), their access tokens too.
      for (const grantId of grants) {
        const grant = await provider.Grant.find(grantId);
        if (grant) await grant.destroy();
      }
      log('revoked grants', grants.size);
      grants.clear();
    }
    log('control', JSON.stringify(shownState()));
    ctx.body = shownState();
    return;
  }

  // --- no SSO: every authorization request starts without a session --------------------
  // The login_hint alone decides the account, whatever cookies the client kept. (With a
  // remembered session, oidc-provider would skip the interaction, and switching account
  // answers 200 with a browser-only auto-submitting logout form.) The session cookie is
  // hidden from /auth and from its resume, /auth/<uid>.
  if ((ctx.path === AUTH_PATH || ctx.path.startsWith(`${AUTH_PATH}/`)) && ctx.headers.cookie) {
    ctx.req.headers.cookie = ctx.headers.cookie
      .split(';')
      .filter((c) => !c.trim().startsWith('_session'))
      .join(';');
  }

  // --- automatic interaction: log in + consent without a browser ------------------------
  if (ctx.path.startsWith('/interaction/')) {
    try {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      const { params, session } = details;
      const hint = params.login_hint;
      let result;
      let account;
      if (hint === 'deny') {
        result = { error: 'access_denied', error_description: 'End-User denied the request (login_hint=deny)' };
      } else {
        if (hint !== undefined) account = findAccountByHint(hint);
        else if (session?.accountId) account = accounts.find((a) => a.sub === session.accountId);
        else [account] = accounts;
        if (!account) {
          result = { error: 'access_denied', error_description: `no account matches login_hint ${JSON.stringify(hint ?? null)}` };
        } else {
          let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
          if (!grant || grant.accountId !== account.sub) {
            grant = new provider.Grant({ accountId: account.sub, clientId: params.client_id });
          }
          grant.addOIDCScope(String(params.scope ?? 'openid'));
          if (typeof params.claims === 'string') {
            try {
              const claims = JSON.parse(params.claims);
              const names = new Set([...Object.keys(claims.id_token ?? {}), ...Object.keys(claims.userinfo ?? {})]);
              grant.addOIDCClaims([...names]);
            } catch { /* oidc-provider already rejected malformed claims */ }
          }
          const missing = details.prompt.details?.missingResourceScopes ?? {};
          for (const [indicator, scopes] of Object.entries(missing)) {
            grant.addResourceScope(indicator, scopes.join(' '));
          }
          const grantId = await grant.save();
          grants.add(grantId);
          result = { login: { accountId: account.sub }, consent: { grantId } };
        }
      }
      log('interaction', details.uid, details.prompt.name, hint ?? '-', result.error ?? `-> ${account.sub}`);
      const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
      ctx.status = 303;
      ctx.redirect(returnTo);
    } catch (err) {
      log('interaction failed', err.message);
      ctx.status = 400;
      ctx.body = { error: 'interaction_failed', error_description: err.message };
    }
    return;
  }

  // --- token endpoint wrapper: outage + one-shot ID token tampering ---------------------
  if (ctx.path === TOKEN_PATH && ctx.method === 'POST') {
    if (state.down) {
      ctx.status = 503;
      ctx.set('Retry-After', '1');
      ctx.body = { error: 'temporarily_unavailable', error_description: 'token endpoint is down (fixture control)' };
      return;
    }
    await next();
    if (state.tamper && ctx.status === 200 && ctx.body && typeof ctx.body === 'object' && typeof ctx.body.id_token === 'string') {
      const mode = state.tamper;
      state.tamper = null;
      ctx.body = { ...ctx.body, id_token: await tamperIdToken(ctx.body.id_token, mode) };
      log('tampered id_token', mode);
    }
    return;
  }

  await next();
});

server.on('request', provider.callback());

// ---------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------

let closing = false;
function shutdown(why) {
  if (closing) return;
  closing = true;
  log(`shutting down (${why})`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (exitOnStdinEof) {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.on('data', () => {});
  process.stdin.resume();
}
// If the reader of stdout goes away, nobody is driving us any more.
process.stdout.on('error', () => shutdown('stdout closed'));

writeStdout(JSON.stringify({ issuer }));
log(`listening on ${issuer}; clients=${clientsConfig.map((c) => c.client_id).join(',')} accounts=${accounts.map((a) => a.sub).join(',')}`);
