// The older SDK generation the seeds are written against: @clerk/clerk-sdk-node 5.1.6 (pinned in
// package.json; it brings its own @clerk/backend 1.x) against a freshly started latchkey, used as
// seed 003 shows — users, email addresses, phone numbers, organizations, sessions including the
// deprecated `sessions.verifySession` (POST /v1/sessions/{id}/verify), `verifyToken`, and the
// Express middleware an API protects its routes with. docs/clerk-sdks.md, "Older SDK
// generations", says what differs from the current generation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { startLatchkey, signInThroughFrontendApi } from '../clerk-backend/latchkey.mjs';

let lk;
let sdk; // the module, imported once latchkey's keys are in the environment
let clerk; // createClerkClient({ secretKey, apiUrl })

const password = 'plum-Anchor-47-quietly';

before(async () => {
  lk = await startLatchkey();
  // The SDK's default client reads these when first used, as an app's .env provides them.
  process.env.CLERK_SECRET_KEY = lk.secretKey;
  process.env.CLERK_PUBLISHABLE_KEY = lk.publishableKey;
  process.env.CLERK_API_URL = lk.url;
  sdk = await import('@clerk/clerk-sdk-node');
  clerk = sdk.createClerkClient({ secretKey: lk.secretKey, apiUrl: lk.url });
});

after(async () => {
  await lk?.stop();
});

async function rejects(promise, { status, code }) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.status, status, `status of ${JSON.stringify(e.errors)}`);
    assert.equal(e.errors?.[0]?.code, code, JSON.stringify(e.errors));
    return e;
  }
  assert.fail(`expected a ${status} ${code} error`);
}

test('the pinned generation is the one installed', () => {
  const require = createRequire(import.meta.url);
  const sdkNode = JSON.parse(readFileSync(require.resolve('@clerk/clerk-sdk-node/package.json'), 'utf8'));
  assert.equal(sdkNode.version, '5.1.6');
  const backendPath = require.resolve('@clerk/backend/package.json', { paths: [require.resolve('@clerk/clerk-sdk-node')] });
  const backend = JSON.parse(readFileSync(backendPath, 'utf8'));
  assert.match(backend.version, /^1\./, `clerk-sdk-node 5 runs on @clerk/backend 1.x, found ${backend.version}`);
});

describe('users, email addresses and phone numbers (seed 003, §2 and §4)', () => {
  let userId;

  test('the default clerkClient, configured from the environment, creates and reads a user', async () => {
    const user = await sdk.clerkClient.users.createUser({
      emailAddress: ['test@example.com'],
      password: 'password123-Kestrel',
      firstName: 'John',
    });
    userId = user.id;
    assert.match(user.id, /^user_/);
    assert.equal(user.firstName, 'John');
    assert.equal(user.emailAddresses[0].emailAddress, 'test@example.com');
    const fetched = await sdk.clerkClient.users.getUser(user.id);
    assert.equal(fetched.id, user.id);
    assert.equal(fetched.primaryEmailAddress?.emailAddress, 'test@example.com');
  });

  test('getUserList, updateUser, updateUserMetadata', async () => {
    const list = await clerk.users.getUserList();
    assert.ok(Array.isArray(list.data), 'backend 1.x pages lists as { data, totalCount }');
    assert.ok(list.data.some((u) => u.id === userId));
    assert.ok(list.totalCount >= 1);
    const updated = await clerk.users.updateUser(userId, { lastName: 'Doe' });
    assert.equal(updated.fullName, 'John Doe');
    const meta = await clerk.users.updateUserMetadata(userId, {
      publicMetadata: { plan: 'family' },
      privateMetadata: { notes: 'beta' },
    });
    assert.deepEqual(meta.publicMetadata, { plan: 'family' });
    assert.deepEqual(meta.privateMetadata, { notes: 'beta' });
  });

  test('emailAddresses: create, get, delete', async () => {
    const email = await clerk.emailAddresses.createEmailAddress({
      userId,
      emailAddress: 'second@example.com',
      verified: true,
    });
    assert.match(email.id, /^idn_/);
    assert.equal(email.emailAddress, 'second@example.com');
    assert.equal(email.verification?.status, 'verified');
    const got = await clerk.emailAddresses.getEmailAddress(email.id);
    assert.equal(got.emailAddress, 'second@example.com');
    const deleted = await clerk.emailAddresses.deleteEmailAddress(email.id);
    assert.equal(deleted.deleted, true);
    await rejects(clerk.emailAddresses.getEmailAddress(email.id), { status: 404, code: 'resource_not_found' });
  });

  test('phoneNumbers: create, get, delete', async () => {
    const phone = await clerk.phoneNumbers.createPhoneNumber({ userId, phoneNumber: '+15550100123', verified: true });
    assert.equal(phone.phoneNumber, '+15550100123');
    assert.equal((await clerk.phoneNumbers.getPhoneNumber(phone.id)).id, phone.id);
    assert.equal((await clerk.phoneNumbers.deletePhoneNumber(phone.id)).deleted, true);
  });

  test('a bad input is refused with Clerk’s error, and nothing is created', async () => {
    await rejects(clerk.users.createUser({ emailAddress: ['test@example.com'], password: 'another-Pass-981' }), {
      status: 422,
      code: 'form_identifier_exists',
    });
    const list = await clerk.users.getUserList({ emailAddress: ['test@example.com'] });
    assert.equal(list.data.length, 1);
  });
});

describe('organizations (seed 003, §5)', () => {
  test('create, get, update, delete', async () => {
    const owner = await clerk.users.createUser({ emailAddress: ['owner@example.com'], password });
    const org = await clerk.organizations.createOrganization({ name: 'My Dev Team', slug: 'my-dev-team', createdBy: owner.id });
    assert.match(org.id, /^org_/);
    assert.equal(org.slug, 'my-dev-team');
    const got = await clerk.organizations.getOrganization({ organizationId: org.id });
    assert.equal(got.name, 'My Dev Team');
    const bySlug = await clerk.organizations.getOrganization({ slug: 'my-dev-team' });
    assert.equal(bySlug.id, org.id);
    const members = await clerk.organizations.getOrganizationMembershipList({ organizationId: org.id });
    assert.equal(members.data[0].publicUserData.userId, owner.id);
    assert.equal(members.data[0].role, 'org:admin');
    const renamed = await clerk.organizations.updateOrganization(org.id, { name: 'Night Shift' });
    assert.equal(renamed.name, 'Night Shift');
    const deleted = await clerk.organizations.deleteOrganization(org.id);
    assert.equal(deleted.deleted, true);
    await rejects(clerk.organizations.getOrganization({ organizationId: org.id }), { status: 404, code: 'resource_not_found' });
  });
});

describe('sessions, verifySession and verifyToken (seed 003, §3)', () => {
  let user;
  let signedIn;

  before(async () => {
    user = await clerk.users.createUser({ emailAddress: ['parent@example.com'], password });
    signedIn = await signInThroughFrontendApi(lk.url, 'parent@example.com', password);
  });

  test('getSession and getSessionList', async () => {
    const session = await clerk.sessions.getSession(signedIn.sessionId);
    assert.equal(session.userId, user.id);
    assert.equal(session.status, 'active');
    const list = await clerk.sessions.getSessionList({ userId: user.id });
    assert.ok(list.data.some((s) => s.id === signedIn.sessionId));
  });

  test('verifySession answers the live session its token belongs to', async () => {
    const session = await clerk.sessions.verifySession(signedIn.sessionId, signedIn.jwt);
    assert.equal(session.constructor.name.replace(/^_/, ''), 'Session');
    assert.equal(session.id, signedIn.sessionId);
    assert.equal(session.userId, user.id);
    assert.equal(session.status, 'active');
  });

  test('verifySession refuses a forged, foreign or unknown token with Clerk’s errors', async () => {
    const [h, p, s] = signedIn.jwt.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url'));
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'user_someone_else' })).toString('base64url')}.${s}`;
    await rejects(clerk.sessions.verifySession(signedIn.sessionId, forged), { status: 400, code: 'token_invalid' });
    await rejects(clerk.sessions.verifySession(signedIn.sessionId, 'not-a-token'), { status: 400, code: 'token_invalid' });
    // Another live session's token does not verify this one.
    const other = await signInThroughFrontendApi(lk.url, 'parent@example.com', password);
    await rejects(clerk.sessions.verifySession(signedIn.sessionId, other.jwt), { status: 400, code: 'token_invalid' });
    await rejects(clerk.sessions.verifySession('sess_unknown', signedIn.jwt), { status: 404, code: 'resource_not_found' });
    // Nothing was changed by the refusals.
    assert.equal((await clerk.sessions.getSession(signedIn.sessionId)).status, 'active');
  });

  test('verifyToken checks the session token networklessly, with the instance’s keys', async () => {
    const claims = await clerk.verifyToken(signedIn.jwt);
    assert.equal(claims.sub, user.id);
    assert.equal(claims.sid, signedIn.sessionId);
    const standalone = await sdk.verifyToken(signedIn.jwt, { secretKey: lk.secretKey, apiUrl: lk.url });
    assert.equal(standalone.sub, user.id);
    const [h, p] = signedIn.jwt.split('.');
    await assert.rejects(clerk.verifyToken(`${h}.${p}.AAAA`), /signature/i);
  });

  test('the Express middleware protects a route: the token’s user passes, no token is refused', async () => {
    const requireAuth = sdk.ClerkExpressRequireAuth();
    const server = createServer((req, res) => {
      requireAuth(req, res, (err) => {
        if (err) {
          res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'Not signed in' }));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ userId: req.auth.userId }));
      });
    });
    await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
    const base = `http://127.0.0.1:${server.address().port}`;
    try {
      const ok = await fetch(`${base}/api/feeds`, { headers: { authorization: `Bearer ${signedIn.jwt}` } });
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { userId: user.id });
      const anonymous = await fetch(`${base}/api/feeds`);
      assert.equal(anonymous.status, 401);
    } finally {
      await new Promise((ok) => server.close(ok));
    }
  });

  test('once revoked, the session no longer verifies', async () => {
    const revoked = await clerk.sessions.revokeSession(signedIn.sessionId);
    assert.equal(revoked.status, 'revoked');
    const e = await rejects(clerk.sessions.verifySession(signedIn.sessionId, signedIn.jwt), {
      status: 400,
      code: 'session_not_active',
    });
    assert.match(e.errors[0].message, /revoked/);
  });

  test('deleteUser ends the user and their sessions', async () => {
    const again = await signInThroughFrontendApi(lk.url, 'parent@example.com', password);
    const deleted = await clerk.users.deleteUser(user.id);
    assert.equal(deleted.deleted, true);
    await rejects(clerk.users.getUser(user.id), { status: 404, code: 'resource_not_found' });
    // The user's sessions went with them: the token names a session that no longer exists.
    await rejects(clerk.sessions.verifySession(again.sessionId, again.jwt), { status: 404, code: 'resource_not_found' });
  });
});
