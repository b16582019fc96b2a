// Custom organization flows (issue 36): the pinned clerk-js driven through the resource methods
// behind `useOrganization` and `useOrganizationList` in Debian's Chromium, two people on two
// devices (the app at 127.0.0.1 and at localhost, each its own cookie jar): create, switch with
// setActive, invite, accept, list, change a role (the next token carries it), leave, and back
// to the personal account. Each answer checked as clerk-js reads it (its resource fields).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startLatchkey } from '../clerk-backend/latchkey.mjs';
import { readPage, startAppServer } from './app-server.mjs';
import { launchBrowser } from './browser.mjs';

const PASSWORD = 'correct horse battery staple';
const ADA = 'ada@example.com';
const BOB = 'bob@example.com';
let latchkey, app, browser, ada, bob, orgId, bobId;
const problems = [];

const claims = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
const tokenOf = async (page) => claims(await page.evaluate(() => window.Clerk.session.getToken({ skipCache: true })));

async function signedInDevice(origin, email) {
  const p = await browser.context.newPage();
  p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await p.goto(`${origin}/`);
  await p.evaluate(() => window.clerkLoaded);
  await p.evaluate(async ([identifier, password]) => {
    const signIn = await window.Clerk.client.signIn.create({ identifier, password });
    await window.Clerk.setActive({ session: signIn.createdSessionId });
  }, [email, PASSWORD]);
  return p;
}

before(async () => {
  latchkey = await startLatchkey();
  app = await startAppServer({
    latchkey,
    pages: { '/': (c) => readPage('page.html').replace('{{PUBLISHABLE_KEY}}', c.publishableKey) },
  });
  for (const email of [ADA, BOB]) {
    const created = await fetch(`${latchkey.url}/v1/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${latchkey.secretKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email_address: [email], password: PASSWORD }),
    });
    const text = await created.text();
    assert.equal(created.status, 200, text);
    if (email === BOB) bobId = JSON.parse(text).id;
  }
  browser = await launchBrowser();
  ada = await signedInDevice(app.origin, ADA);
  bob = await signedInDevice(app.origin.replace('127.0.0.1', 'localhost'), BOB);
});

after(async () => {
  await browser?.close();
  await app?.close();
  await latchkey?.stop();
});

test('useOrganizationList: createOrganization, then setActive makes it the token\'s organization', async () => {
  const created = await ada.evaluate(async () => {
    const org = await window.Clerk.createOrganization({ name: 'Night Shift' });
    await window.Clerk.setActive({ organization: org.id });
    return { id: org.id, name: org.name, slug: org.slug, active: window.Clerk.organization?.id, role: window.Clerk.organization && window.Clerk.user.organizationMemberships.find((m) => m.organization.id === org.id)?.role };
  });
  orgId = created.id;
  assert.match(created.id, /^org_/);
  assert.deepEqual([created.name, created.slug, created.active, created.role], ['Night Shift', 'night-shift', created.id, 'org:admin']);
  const o = (await tokenOf(ada)).o;
  assert.deepEqual([o?.id, o?.rol, o?.slg], [created.id, 'admin', 'night-shift']);
  const listed = await ada.evaluate(async () => {
    const page = await window.Clerk.user.getOrganizationMemberships();
    return { total: page.total_count, orgs: page.data.map((m) => [m.organization.name, m.role, m.organization.membersCount]) };
  });
  assert.deepEqual(listed, { total: 1, orgs: [['Night Shift', 'org:admin', 1]] });
});

test('useOrganization: inviteMember, and the invitation is listed as pending', async () => {
  const invited = await ada.evaluate(async (email) => {
    const inv = await window.Clerk.organization.inviteMember({ emailAddress: email, role: 'org:member' });
    const listed = await window.Clerk.organization.getInvitations({ status: ['pending'] });
    return { status: inv.status, role: inv.role, email: inv.emailAddress, org: inv.organizationId, listed: listed.data.map((i) => i.emailAddress), total: listed.total_count };
  }, BOB);
  assert.deepEqual(invited, { status: 'pending', role: 'org:member', email: BOB, org: orgId, listed: [BOB], total: 1 });
});

test('useOrganizationList: the invited person sees the invitation, accepts it and switches to the organization', async () => {
  const seen = await bob.evaluate(async () => {
    const page = await window.Clerk.user.getOrganizationInvitations({ status: 'pending' });
    return page.data.map((i) => ({ id: i.id, name: i.publicOrganizationData.name, role: i.role, status: i.status }));
  });
  assert.equal(seen.length, 1, JSON.stringify(seen));
  assert.deepEqual([seen[0].name, seen[0].role, seen[0].status], ['Night Shift', 'org:member', 'pending']);
  const accepted = await bob.evaluate(async (id) => {
    const page = await window.Clerk.user.getOrganizationInvitations({ status: 'pending' });
    const inv = page.data.find((i) => i.id === id);
    const done = await inv.accept();
    await window.Clerk.user.reload();
    const memberships = await window.Clerk.user.getOrganizationMemberships();
    await window.Clerk.setActive({ organization: done.publicOrganizationData.id });
    return { status: done.status, orgs: memberships.data.map((m) => [m.organization.name, m.role]), active: window.Clerk.organization?.name };
  }, seen[0].id);
  assert.deepEqual(accepted, { status: 'accepted', orgs: [['Night Shift', 'org:member']], active: 'Night Shift' });
  assert.equal((await tokenOf(bob)).o?.rol, 'member');
});

test('useOrganization: getMemberships lists both; updateMember makes the invitee an admin, and their next token says so', async () => {
  const members = await ada.evaluate(async () => {
    const page = await window.Clerk.organization.getMemberships();
    return { total: page.total_count, people: page.data.map((m) => [m.publicUserData.identifier, m.role]).sort() };
  });
  assert.deepEqual(members, { total: 2, people: [[ADA, 'org:admin'], [BOB, 'org:member']] });
  const updated = await ada.evaluate(async (userId) => {
    const m = await window.Clerk.organization.updateMember({ userId, role: 'org:admin' });
    return [m.role, m.publicUserData.userId];
  }, bobId);
  assert.deepEqual(updated, ['org:admin', bobId]);
  assert.equal((await tokenOf(bob)).o?.rol, 'admin');
});

test('useOrganizationList: leaving the organization, then setActive back to the personal account', async () => {
  const left = await bob.evaluate(async (id) => {
    const gone = await window.Clerk.user.leaveOrganization(id);
    await window.Clerk.setActive({ organization: null });
    const memberships = await window.Clerk.user.getOrganizationMemberships();
    return { deleted: gone.deleted, active: window.Clerk.organization, left: memberships.total_count };
  }, orgId);
  assert.deepEqual(left, { deleted: true, active: null, left: 0 });
  assert.equal((await tokenOf(bob)).o, undefined, 'no organization in a personal token');
  const remaining = await ada.evaluate(async () => (await window.Clerk.organization.getMemberships()).data.map((m) => m.publicUserData.identifier));
  assert.deepEqual(remaining, [ADA]);
});

test('setActive between the organization and the personal account', async () => {
  const switched = await ada.evaluate(async (id) => {
    await window.Clerk.setActive({ organization: null });
    const personal = window.Clerk.organization;
    await window.Clerk.setActive({ organization: id });
    return [personal, window.Clerk.organization?.id];
  }, orgId);
  assert.deepEqual(switched, [null, orgId]);
  assert.equal((await tokenOf(ada)).o?.id, orgId);
});

test('no page errors', () => assert.deepEqual(problems, []));
