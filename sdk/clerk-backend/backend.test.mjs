// The official @clerk/backend SDK (pinned in package.json) against a freshly started latchkey:
// every assertion is on what the SDK returns — its classes and camelCase fields — so a wire
// difference that the SDK would swallow silently fails here.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClerkClient, verifyToken } from '@clerk/backend';
import { startLatchkey, signInThroughFrontendApi } from './latchkey.mjs';

let lk;
let clerk;

before(async () => {
  lk = await startLatchkey();
  clerk = createClerkClient({ secretKey: lk.secretKey, apiUrl: lk.url, publishableKey: lk.publishableKey });
});

after(async () => {
  await lk?.stop();
});

async function rejects(promise, { status, code }) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.status, status, `status of ${JSON.stringify(e.errors)}`);
    assert.equal(e.errors?.[0]?.code, code);
    assert.match(e.clerkTraceId ?? '', /^[0-9a-f]{8,}$/, 'clerkTraceId is read from the body');
    return e;
  }
  assert.fail(`expected a ${status} ${code} error`);
}

const password = 'plum-Anchor-47-quietly';

// The SDK's resource classes are not exported; their names are what its deserializer chose.
const isA = (value, className) => value?.constructor?.name?.replace(/^_/, '') === className;

describe('users', () => {
  test('createUser, getUser and the User class', async () => {
    const created = await clerk.users.createUser({
      emailAddress: ['grace@example.com'],
      phoneNumber: ['+15550100199'],
      username: 'grace_h',
      password,
      firstName: 'Grace',
      lastName: 'Hopper',
      externalId: 'ext-grace',
      publicMetadata: { plan: 'pro', prefs: { theme: 'dark', lang: 'en' } },
      privateMetadata: { stripe: 'cus_1' },
      createdAt: new Date('2024-01-02T03:04:05.678Z'),
      legalAcceptedAt: new Date('2024-01-02T03:04:06.000Z'),
    });
    assert.ok(isA(created, 'User'), `${created?.constructor?.name} is not User`);
    assert.match(created.id, /^user_[0-9A-Za-z]{27}$/);
    assert.equal(created.firstName, 'Grace');
    assert.equal(created.fullName, 'Grace Hopper');
    assert.equal(created.username, 'grace_h');
    assert.equal(created.externalId, 'ext-grace');
    assert.equal(created.createdAt, Date.parse('2024-01-02T03:04:05.678Z'), 'ISO dates accepted, ms returned');
    assert.equal(created.legalAcceptedAt, Date.parse('2024-01-02T03:04:06.000Z'));
    assert.equal(created.passwordEnabled, true);
    assert.equal(created.primaryEmailAddress?.emailAddress, 'grace@example.com');
    assert.ok(isA(created.emailAddresses[0], 'EmailAddress'));
    assert.match(created.emailAddresses[0].id, /^idn_[0-9A-Za-z]{27}$/);
    assert.equal(created.emailAddresses[0].verification?.status, 'verified');
    assert.equal(created.primaryPhoneNumber?.phoneNumber, '+15550100199');
    assert.deepEqual(created.publicMetadata, { plan: 'pro', prefs: { theme: 'dark', lang: 'en' } });
    assert.deepEqual(created.privateMetadata, { stripe: 'cus_1' });

    const fetched = await clerk.users.getUser(created.id);
    assert.ok(isA(fetched, 'User'), `${fetched?.constructor?.name} is not User`);
    assert.equal(fetched.id, created.id);
    assert.equal(typeof fetched.updatedAt, 'number');
  });

  test('createUser refuses taken identifiers and weak passwords with Clerk codes', async () => {
    await rejects(clerk.users.createUser({ emailAddress: ['grace@example.com'], password }), {
      status: 422,
      code: 'form_identifier_exists',
    });
    await rejects(clerk.users.createUser({ emailAddress: ['weak@example.com'], password: 'password' }), {
      status: 422,
      code: 'form_password_pwned',
    });
    await rejects(clerk.users.createUser({ emailAddress: ['not-an-email'] }), { status: 422, code: 'form_param_format_invalid' });
    const e = await rejects(clerk.users.getUser('user_doesnotexist0000000000000000'), { status: 404, code: 'resource_not_found' });
    assert.equal(e.errors[0].longMessage.length > 0, true);
  });

  test('getUserList pages, filters, orders and counts', async () => {
    const ids = [];
    for (let i = 0; i < 12; i++) {
      const u = await clerk.users.createUser({
        emailAddress: [`pager${String(i).padStart(2, '0')}@example.org`],
        firstName: `Pager${String(i).padStart(2, '0')}`,
        skipPasswordRequirement: true,
      });
      ids.push(u.id);
    }
    const first = await clerk.users.getUserList({ query: 'pager' });
    assert.equal(first.totalCount, 12);
    assert.equal(first.data.length, 10, 'limit defaults to 10');
    assert.ok(first.data.every((u) => isA(u, 'User')));
    const second = await clerk.users.getUserList({ query: 'pager', offset: 10 });
    assert.equal(second.data.length, 2);
    const seen = new Set([...first.data, ...second.data].map((u) => u.id));
    assert.equal(seen.size, 12, 'two pages cover every user once');

    const asc = await clerk.users.getUserList({ query: 'pager', orderBy: '+first_name', limit: 3 });
    assert.deepEqual(asc.data.map((u) => u.firstName), ['Pager00', 'Pager01', 'Pager02']);
    const desc = await clerk.users.getUserList({ query: 'pager', orderBy: '-first_name', limit: 2 });
    assert.deepEqual(desc.data.map((u) => u.firstName), ['Pager11', 'Pager10']);

    const byEmail = await clerk.users.getUserList({ emailAddress: ['pager03@example.org', 'PAGER07@example.org'] });
    assert.deepEqual(byEmail.data.map((u) => u.firstName).sort(), ['Pager03', 'Pager07']);
    assert.equal(byEmail.totalCount, 2);
    const byId = await clerk.users.getUserList({ userId: [ids[4], ids[5], ids[6]], limit: 2 });
    assert.equal(byId.totalCount, 3);
    assert.equal(byId.data.length, 2);
    assert.equal((await clerk.users.getUserList({ externalId: ['ext-grace'] })).data[0].firstName, 'Grace');
    assert.equal((await clerk.users.getUserList({ username: ['grace_h'] })).totalCount, 1);
    assert.equal((await clerk.users.getUserList({ phoneNumber: ['+1 (555) 010-0199'] })).data[0]?.firstName, 'Grace');
    assert.equal((await clerk.users.getUserList({ organizationId: ['org_none'] })).totalCount, 0);
    assert.equal(await clerk.users.getCount({ query: 'pager1' }), 2);
    assert.equal(await clerk.users.getCount(), 13);
    await rejects(clerk.users.getUserList({ orderBy: '-shoe_size' }), { status: 422, code: 'form_param_value_invalid' });
    await rejects(clerk.users.getUserList({ limit: 501 }), { status: 422, code: 'form_param_value_invalid' });
  });

  test('updateUser, metadata merge and replace, delete', async () => {
    const u = await clerk.users.createUser({ emailAddress: ['meta@example.com'], publicMetadata: { a: 1, nested: { x: 1, y: 2 } } });
    const renamed = await clerk.users.updateUser(u.id, { firstName: 'Meta', lastName: 'Data' });
    assert.equal(renamed.fullName, 'Meta Data');
    const merged = await clerk.users.updateUserMetadata(u.id, {
      publicMetadata: { nested: { y: null, z: 3 }, b: true },
      privateMetadata: { secret: 's' },
    });
    assert.deepEqual(merged.publicMetadata, { a: 1, b: true, nested: { x: 1, z: 3 } }, 'deep merge, null deletes');
    assert.deepEqual(merged.privateMetadata, { secret: 's' });
    const replaced = await clerk.users.replaceUserMetadata(u.id, { publicMetadata: { only: 'this' } });
    assert.deepEqual(replaced.publicMetadata, { only: 'this' });
    assert.deepEqual(replaced.privateMetadata, { secret: 's' }, 'replacing one object leaves the others');
    // The deprecated inline form (what v2 sent) still replaces.
    const inline = await clerk.users.updateUser(u.id, { publicMetadata: { v2: 1 } });
    assert.deepEqual(inline.publicMetadata, { v2: 1 });
    await rejects(clerk.users.updateUser(u.id, { username: 'x' }), { status: 422, code: 'form_username_invalid_length' });

    const gone = await clerk.users.deleteUser(u.id);
    assert.ok(isA(gone, 'DeletedObject'), `${gone?.constructor?.name} is not DeletedObject`);
    assert.equal(gone.id, u.id);
    assert.equal(gone.deleted, true);
    assert.equal(gone.object, 'user');
    await rejects(clerk.users.getUser(u.id), { status: 404, code: 'resource_not_found' });
  });

  test('verifyPassword, ban and lock', async () => {
    const u = await clerk.users.createUser({ emailAddress: ['banme@example.com'], password });
    assert.deepEqual(await clerk.users.verifyPassword({ userId: u.id, password }), { verified: true });
    await rejects(clerk.users.verifyPassword({ userId: u.id, password: 'wrong-password-1' }), {
      status: 422,
      code: 'form_password_incorrect',
    });

    const { sessionId } = await signInThroughFrontendApi(lk.url, 'banme@example.com', password);
    const banned = await clerk.users.banUser(u.id);
    assert.equal(banned.banned, true);
    assert.equal((await clerk.sessions.getSession(sessionId)).status, 'revoked', 'a ban ends every session');
    await assert.rejects(signInThroughFrontendApi(lk.url, 'banme@example.com', password), /user_banned/);
    assert.equal((await clerk.users.unbanUser(u.id)).banned, false);

    const locked = await clerk.users.lockUser(u.id);
    assert.equal(locked.locked, true);
    await assert.rejects(signInThroughFrontendApi(lk.url, 'banme@example.com', password), /user_locked/);
    assert.equal((await clerk.users.unlockUser(u.id)).locked, false);
    await signInThroughFrontendApi(lk.url, 'banme@example.com', password);
  });
});

describe('email addresses and phone numbers', () => {
  test('create, get, update, delete', async () => {
    const u = await clerk.users.createUser({ emailAddress: ['first@example.net'] });
    const added = await clerk.emailAddresses.createEmailAddress({ userId: u.id, emailAddress: 'second@example.net', verified: true });
    assert.ok(isA(added, 'EmailAddress'), `${added?.constructor?.name} is not EmailAddress`);
    assert.equal(added.emailAddress, 'second@example.net');
    assert.deepEqual(added.linkedTo, []);
    assert.equal((await clerk.emailAddresses.getEmailAddress(added.id)).id, added.id);
    await clerk.emailAddresses.updateEmailAddress(added.id, { primary: true });
    assert.equal((await clerk.users.getUser(u.id)).primaryEmailAddressId, added.id);
    const first = u.emailAddresses[0].id;
    const deleted = await clerk.emailAddresses.deleteEmailAddress(first);
    assert.ok(isA(deleted, 'DeletedObject'), `${deleted?.constructor?.name} is not DeletedObject`);
    assert.equal(deleted.object, 'email_address');
    await rejects(clerk.emailAddresses.deleteEmailAddress(added.id), { status: 400, code: 'primary_identification_deletion_forbidden' });
    await rejects(clerk.emailAddresses.createEmailAddress({ userId: u.id, emailAddress: 'grace@example.com', verified: true }), {
      status: 422,
      code: 'form_identifier_exists',
    });

    const phone = await clerk.phoneNumbers.createPhoneNumber({ userId: u.id, phoneNumber: '+44 20 7183 8750', verified: true });
    assert.ok(isA(phone, 'PhoneNumber'), `${phone?.constructor?.name} is not PhoneNumber`);
    assert.equal(phone.phoneNumber, '+442071838750');
    const updated = await clerk.phoneNumbers.updatePhoneNumber(phone.id, { reservedForSecondFactor: true });
    assert.equal(updated.reservedForSecondFactor, true);
    assert.equal((await clerk.phoneNumbers.getPhoneNumber(phone.id)).id, phone.id);
    assert.equal((await clerk.phoneNumbers.deletePhoneNumber(phone.id)).deleted, true);
    await rejects(clerk.phoneNumbers.createPhoneNumber({ userId: u.id, phoneNumber: '12345' }), {
      status: 422,
      code: 'form_param_format_invalid',
    });
  });
});

describe('sessions and tokens', () => {
  test('createSession, getSessionList, getToken, revokeSession', async () => {
    const u = await clerk.users.createUser({ emailAddress: ['sess@example.com'], password });
    const s1 = await clerk.sessions.createSession({ userId: u.id });
    const s2 = await clerk.sessions.createSession({ userId: u.id });
    assert.ok(isA(s1, 'Session'), `${s1?.constructor?.name} is not Session`);
    assert.match(s1.id, /^sess_[0-9A-Za-z]{27}$/);
    assert.equal(s1.userId, u.id);
    assert.equal(s1.status, 'active');
    const list = await clerk.sessions.getSessionList({ userId: u.id });
    assert.equal(list.totalCount, 2);
    assert.deepEqual(list.data.map((s) => s.id).sort(), [s1.id, s2.id].sort());
    assert.ok(list.data.every((s) => isA(s, 'Session')));

    const token = await clerk.sessions.getToken(s1.id);
    assert.ok(isA(token, 'Token'), `${token?.constructor?.name} is not Token`);
    const claims = await verifyToken(token.jwt, { secretKey: lk.secretKey, apiUrl: lk.url });
    assert.equal(claims.sub, u.id);
    assert.equal(claims.sid, s1.id);
    const long = await clerk.sessions.getToken(s1.id, undefined, 3600);
    const longClaims = await verifyToken(long.jwt, { secretKey: lk.secretKey, apiUrl: lk.url });
    assert.equal(longClaims.exp - longClaims.iat, 3600);

    const revoked = await clerk.sessions.revokeSession(s2.id);
    assert.equal(revoked.status, 'revoked');
    assert.equal((await clerk.sessions.getSessionList({ userId: u.id, status: 'active' })).totalCount, 1);
    await rejects(clerk.sessions.getToken(s2.id), { status: 404, code: 'resource_not_found' });
  });

  test('JWT templates: CRUD, shortcodes, own keys, oversized tokens', async () => {
    const u = await clerk.users.createUser({ emailAddress: ['tmpl@example.com'], firstName: 'Tem', publicMetadata: { plan: 'team' } });
    const s = await clerk.sessions.createSession({ userId: u.id });
    const t = await clerk.jwtTemplates.create({
      name: 'supabase',
      claims: { aud: 'authenticated', email: '{{user.primary_email_address}}', plan: '{{user.public_metadata.plan}}', role: "{{org.role || 'authenticated'}}" },
      lifetime: 120,
      allowedClockSkew: 10,
    });
    assert.ok(isA(t, 'JwtTemplate'), `${t?.constructor?.name} is not JwtTemplate`);
    assert.match(t.id, /^jtmp_[0-9A-Za-z]{27}$/);
    assert.equal(t.lifetime, 120);
    const listed = await clerk.jwtTemplates.list();
    assert.equal(listed.totalCount, 1);
    assert.equal(listed.data[0].name, 'supabase');
    assert.equal((await clerk.jwtTemplates.get(t.id)).name, 'supabase');

    const { jwt } = await clerk.sessions.getToken(s.id, 'supabase');
    const [header, payload] = jwt.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url')));
    assert.equal(header.alg, 'RS256');
    assert.deepEqual(
      { aud: payload.aud, email: payload.email, plan: payload.plan, role: payload.role, sub: payload.sub, life: payload.exp - payload.iat },
      { aud: 'authenticated', email: 'tmpl@example.com', plan: 'team', role: 'authenticated', sub: u.id, life: 120 },
    );
    assert.equal(payload.iat - payload.nbf, 10);

    // Signed with the template's own HMAC key, as Supabase and Hasura expect.
    const secret = 'a-supabase-jwt-secret-of-32-bytes!!';
    await clerk.jwtTemplates.update({ templateId: t.id, name: 'supabase', claims: { aud: 'authenticated' }, customSigningKey: true, signingAlgorithm: 'HS256', signingKey: secret });
    const signed = (await clerk.sessions.getToken(s.id, 'supabase')).jwt;
    const [h, p, sig] = signed.split('.');
    const { createHmac } = await import('node:crypto');
    assert.equal(createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url'), sig);

    await rejects(clerk.jwtTemplates.create({ name: 'bad', claims: { sub: 'me' } }), { status: 422, code: 'form_param_value_invalid' });
    await rejects(clerk.jwtTemplates.create({ name: 'supabase', claims: {} }), { status: 422, code: 'form_identifier_exists' });
    await clerk.jwtTemplates.create({ name: 'huge', claims: { blob: '{{user.public_metadata.blob}}' } });
    await clerk.users.updateUserMetadata(u.id, { publicMetadata: { blob: 'x'.repeat(5000) } });
    await rejects(clerk.sessions.getToken(s.id, 'huge'), { status: 422, code: 'token_too_large' });
    await rejects(clerk.sessions.getToken(s.id, 'nope'), { status: 404, code: 'resource_not_found' });
    const removed = await clerk.jwtTemplates.delete(t.id);
    assert.ok(isA(removed, 'DeletedObject'), `${removed?.constructor?.name} is not DeletedObject`);
    assert.equal(removed.object, 'jwt_template');
  });
});

describe('invitations and sign-in tokens', () => {
  test('invitations', async () => {
    const inv = await clerk.invitations.createInvitation({ emailAddress: 'invitee@example.com', publicMetadata: { team: 'blue' }, notify: false });
    assert.ok(isA(inv, 'Invitation'), `${inv?.constructor?.name} is not Invitation`);
    assert.match(inv.id, /^inv_[0-9A-Za-z]{27}$/);
    assert.equal(inv.status, 'pending');
    assert.match(inv.url, /__clerk_ticket=/);
    await rejects(clerk.invitations.createInvitation({ emailAddress: 'invitee@example.com' }), { status: 422, code: 'duplicate_record' });
    await rejects(clerk.invitations.createInvitation({ emailAddress: 'grace@example.com' }), { status: 422, code: 'form_identifier_exists' });
    const bulk = await clerk.invitations.createInvitationBulk([{ emailAddress: 'b1@example.com' }, { emailAddress: 'b2@example.com' }]);
    assert.equal(bulk.length, 2);
    assert.ok(bulk.every((i) => isA(i, 'Invitation')));
    const revoked = await clerk.invitations.revokeInvitation(bulk[0].id);
    assert.equal(revoked.status, 'revoked');
    const pending = await clerk.invitations.getInvitationList({ status: 'pending' });
    assert.deepEqual(pending.data.map((i) => i.emailAddress).sort(), ['b2@example.com', 'invitee@example.com']);
    assert.equal(pending.totalCount, 2);
    assert.equal((await clerk.invitations.getInvitationList()).totalCount, 3);
  });

  test('sign-in tokens sign in once through the Frontend API', async () => {
    const u = await clerk.users.createUser({ emailAddress: ['ticket@example.com'] });
    const t = await clerk.signInTokens.createSignInToken({ userId: u.id, expiresInSeconds: 600 });
    assert.ok(isA(t, 'SignInToken'), `${t?.constructor?.name} is not SignInToken`);
    assert.match(t.id, /^sit_[0-9A-Za-z]{27}$/);
    assert.equal(t.userId, u.id);
    assert.equal(t.status, 'pending');
    const signIn = (ticket) =>
      fetch(`${lk.url}/v1/client/sign_ins`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: lk.url },
        body: new URLSearchParams({ strategy: 'ticket', ticket }),
      });
    const first = await signIn(t.token);
    const body = await first.json();
    assert.equal(first.status, 200, JSON.stringify(body));
    assert.equal(body.response.status, 'complete');
    const second = await signIn(t.token);
    assert.equal(second.status, 422, 'a sign-in token works once');
    assert.equal((await second.json()).errors[0].code, 'ticket_invalid');

    const other = await clerk.signInTokens.createSignInToken({ userId: u.id });
    assert.equal((await clerk.signInTokens.revokeSignInToken(other.id)).status, 'revoked');
    assert.equal((await signIn(other.token)).status, 422, 'a revoked token signs nobody in');
  });
});

describe('token verification', () => {
  test('verifyToken with secretKey + apiUrl, networkless jwtKey, and authenticateRequest', async () => {
    await clerk.users.createUser({ emailAddress: ['verify@example.com'], password });
    const { jwt, sessionId } = await signInThroughFrontendApi(lk.url, 'verify@example.com', password);

    const remote = await verifyToken(jwt, { secretKey: lk.secretKey, apiUrl: lk.url, authorizedParties: [lk.url] });
    assert.equal(remote.sid, sessionId);

    const jwks = await clerk.jwks.getJwks();
    const { createPublicKey } = await import('node:crypto');
    const pem = createPublicKey({ key: jwks.keys[0], format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const offline = await verifyToken(jwt, { jwtKey: pem, authorizedParties: [lk.url] });
    assert.equal(offline.sub, remote.sub);
    await assert.rejects(verifyToken(jwt, { jwtKey: pem, authorizedParties: ['https://evil.example'] }));
    await assert.rejects(verifyToken(jwt.slice(0, -4) + 'AAAA', { jwtKey: pem }));

    const state = await clerk.authenticateRequest(new Request(`${lk.url}/api/data`, { headers: { authorization: `Bearer ${jwt}` } }), {
      authorizedParties: [lk.url],
    });
    assert.equal(state.status, 'signed-in', state.reason);
    const auth = state.toAuth();
    assert.equal(auth.userId, remote.sub);
    assert.equal(auth.sessionId, sessionId);

    await clerk.sessions.revokeSession(sessionId);
    const anonymous = await clerk.authenticateRequest(new Request(`${lk.url}/api/data`), { authorizedParties: [lk.url] });
    assert.equal(anonymous.status, 'signed-out');
    assert.equal(anonymous.toAuth().userId, null);
  });

  test('a wrong secret key is reported as Clerk reports it', async () => {
    const wrong = createClerkClient({ secretKey: 'sk_live_wrong', apiUrl: lk.url });
    await rejects(wrong.users.getUserList(), { status: 401, code: 'clerk_key_invalid' });
  });
});
