// clerkClient.organizations.* and the organization claims of session tokens, through the
// official @clerk/backend (pinned in package.json) against a freshly started latchkey.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClerkClient } from '@clerk/backend';
import { startLatchkey, tokenForOrganization } from './latchkey.mjs';

let lk;
let clerk;

// An app permission and a custom role, declared in the instance's configuration.
const config = `
[organizations]
permissions = ["org:invoices:create"]

[[organizations.roles]]
key = "billing"
name = "Billing"
permissions = ["org:invoices:create", "org:invoices:read"]
`;

before(async () => {
  lk = await startLatchkey({ config });
  clerk = createClerkClient({ secretKey: lk.secretKey, apiUrl: lk.url, publishableKey: lk.publishableKey });
});

after(async () => {
  await lk?.stop();
});

const password = 'plum-Anchor-47-quietly';
const isA = (value, className) => value?.constructor?.name?.replace(/^_/, '') === className;

async function rejects(promise, { status, code }) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.status, status, `status of ${JSON.stringify(e.errors)}`);
    assert.equal(e.errors?.[0]?.code, code);
    return e;
  }
  assert.fail(`expected a ${status} ${code} error`);
}

describe('organizations', () => {
  test('create, get by id and slug, list with query and members count, update, metadata, delete', async () => {
    const owner = await clerk.users.createUser({ emailAddress: ['owner@example.com'], password });
    const org = await clerk.organizations.createOrganization({
      name: 'Acme Corp',
      slug: 'acme-corp',
      createdBy: owner.id,
      maxAllowedMemberships: 10,
      publicMetadata: { plan: 'pro', limits: { seats: 5, storage: 10 } },
      privateMetadata: { stripe: 'cus_123' },
    });
    assert.ok(isA(org, 'Organization'), `${org?.constructor?.name} is not Organization`);
    assert.match(org.id, /^org_[0-9A-Za-z]{27}$/);
    assert.equal(org.slug, 'acme-corp');
    assert.equal(org.createdBy, owner.id);
    assert.equal(org.maxAllowedMemberships, 10);
    assert.deepEqual(org.privateMetadata, { stripe: 'cus_123' });

    const byId = await clerk.organizations.getOrganization({ organizationId: org.id, includeMembersCount: true });
    assert.equal(byId.membersCount, 1, 'the creator is a member');
    const bySlug = await clerk.organizations.getOrganization({ slug: 'acme-corp' });
    assert.equal(bySlug.id, org.id);

    await clerk.organizations.createOrganization({ name: 'Beta Labs' });
    const { data, totalCount } = await clerk.organizations.getOrganizationList({ query: 'acme', includeMembersCount: true });
    assert.equal(totalCount, 1);
    assert.ok(isA(data[0], 'Organization'));
    assert.equal(data[0].membersCount, 1);
    const byName = await clerk.organizations.getOrganizationList({ orderBy: '+name' });
    assert.deepEqual(byName.data.map((o) => o.name), ['Acme Corp', 'Beta Labs']);
    assert.equal(byName.totalCount, 2);

    const updated = await clerk.organizations.updateOrganization(org.id, { name: 'Acme Corporation', adminDeleteEnabled: false });
    assert.equal(updated.name, 'Acme Corporation');
    assert.equal(updated.adminDeleteEnabled, false);
    const merged = await clerk.organizations.updateOrganizationMetadata(org.id, {
      publicMetadata: { limits: { storage: null, seats: 8 }, region: 'eu' },
    });
    assert.deepEqual(merged.publicMetadata, { plan: 'pro', limits: { seats: 8 }, region: 'eu' }, 'deep merge, null deletes');
    assert.deepEqual(merged.privateMetadata, { stripe: 'cus_123' });
    const replaced = await clerk.organizations.replaceOrganizationMetadata(org.id, { privateMetadata: { fresh: true } });
    assert.deepEqual(replaced.privateMetadata, { fresh: true });
    assert.equal(replaced.publicMetadata.region, 'eu', 'an omitted field is kept');

    await rejects(clerk.organizations.createOrganization({ name: 'Dup', slug: 'acme-corp' }), { status: 422, code: 'form_identifier_exists' });
    await rejects(clerk.organizations.getOrganization({ organizationId: 'org_doesnotexist00000000000000' }), { status: 404, code: 'resource_not_found' });

    const deleted = await clerk.organizations.deleteOrganization(org.id);
    assert.ok(isA(deleted, 'DeletedObject'), `${deleted?.constructor?.name} is not DeletedObject`);
    assert.equal(deleted.id, org.id);
    assert.equal(deleted.deleted, true);
    await rejects(clerk.organizations.getOrganization({ slug: 'acme-corp' }), { status: 404, code: 'resource_not_found' });
  });

  test('memberships: create, list, update role, metadata, delete, and the last admin', async () => {
    const admin = await clerk.users.createUser({ emailAddress: ['m-admin@example.com'], password });
    const member = await clerk.users.createUser({ emailAddress: ['m-member@example.com'], password, firstName: 'Mia' });
    const org = await clerk.organizations.createOrganization({ name: 'Members Inc', createdBy: admin.id });

    const m = await clerk.organizations.createOrganizationMembership({ organizationId: org.id, userId: member.id, role: 'org:member' });
    assert.ok(isA(m, 'OrganizationMembership'), `${m?.constructor?.name} is not OrganizationMembership`);
    assert.equal(m.role, 'org:member');
    assert.deepEqual(m.permissions, ['org:sys_memberships:read']);
    assert.ok(isA(m.organization, 'Organization'));
    assert.equal(m.organization.id, org.id);
    assert.equal(m.publicUserData.userId, member.id);
    assert.equal(m.publicUserData.identifier, 'm-member@example.com');
    assert.equal(m.publicUserData.firstName, 'Mia');

    const { data, totalCount } = await clerk.organizations.getOrganizationMembershipList({ organizationId: org.id });
    assert.equal(totalCount, 2);
    assert.ok(data.every((x) => isA(x, 'OrganizationMembership')));
    assert.equal(data[0].publicUserData.userId, member.id, 'newest first by default');
    const admins = await clerk.organizations.getOrganizationMembershipList({ organizationId: org.id, role: ['org:admin'] });
    assert.deepEqual(admins.data.map((x) => x.publicUserData.userId), [admin.id]);

    const billing = await clerk.organizations.updateOrganizationMembership({ organizationId: org.id, userId: member.id, role: 'org:billing' });
    assert.equal(billing.role, 'org:billing');
    assert.deepEqual(billing.permissions, ['org:invoices:create', 'org:invoices:read']);
    const meta = await clerk.organizations.updateOrganizationMembershipMetadata({
      organizationId: org.id,
      userId: member.id,
      publicMetadata: { desk: 4 },
      privateMetadata: { badge: 'b-7' },
    });
    assert.deepEqual(meta.publicMetadata, { desk: 4 });
    assert.deepEqual(meta.privateMetadata, { badge: 'b-7' });

    const mine = await clerk.users.getOrganizationMembershipList({ userId: member.id });
    assert.equal(mine.totalCount, 1);
    assert.equal(mine.data[0].organization.name, 'Members Inc');
    const everyone = await clerk.organizations.getInstanceOrganizationMembershipList({});
    assert.ok(everyone.totalCount >= 2);
    const listed = await clerk.users.getUserList({ organizationId: [org.id] });
    assert.deepEqual(listed.data.map((u) => u.id).sort(), [admin.id, member.id].sort());
    assert.equal(listed.totalCount, 2);

    await rejects(clerk.organizations.updateOrganizationMembership({ organizationId: org.id, userId: admin.id, role: 'org:member' }), {
      status: 422,
      code: 'organization_minimum_permissions_needed',
    });
    await rejects(clerk.organizations.updateOrganizationMembership({ organizationId: org.id, userId: member.id, role: 'org:nope' }), {
      status: 422,
      code: 'form_param_value_invalid',
    });
    const removed = await clerk.organizations.deleteOrganizationMembership({ organizationId: org.id, userId: member.id });
    assert.ok(isA(removed, 'OrganizationMembership'), 'deleting answers the membership, not a DeletedObject');
    assert.equal((await clerk.organizations.getOrganizationMembershipList({ organizationId: org.id })).totalCount, 1);
  });

  test('invitations: create, bulk, list by status, get, revoke', async () => {
    const admin = await clerk.users.createUser({ emailAddress: ['i-admin@example.com'], password });
    const org = await clerk.organizations.createOrganization({ name: 'Invites Ltd', createdBy: admin.id });
    const inv = await clerk.organizations.createOrganizationInvitation({
      organizationId: org.id,
      emailAddress: 'newcomer@example.com',
      role: 'org:member',
      inviterUserId: admin.id,
      publicMetadata: { source: 'sdk' },
    });
    assert.ok(isA(inv, 'OrganizationInvitation'), `${inv?.constructor?.name} is not OrganizationInvitation`);
    assert.equal(inv.emailAddress, 'newcomer@example.com');
    assert.equal(inv.status, 'pending');
    assert.equal(inv.organizationId, org.id);
    assert.match(inv.url, /__clerk_ticket=/);
    assert.ok(inv.expiresAt > Date.now());

    const bulk = await clerk.organizations.createOrganizationInvitationBulk(org.id, [
      { emailAddress: 'b1@example.com', role: 'org:member' },
      { emailAddress: 'b2@example.com', role: 'org:billing' },
    ]);
    assert.equal(bulk.totalCount, 2);
    assert.ok(bulk.data.every((i) => isA(i, 'OrganizationInvitation')));

    const got = await clerk.organizations.getOrganizationInvitation({ organizationId: org.id, invitationId: inv.id });
    assert.deepEqual(got.publicMetadata, { source: 'sdk' });
    const revoked = await clerk.organizations.revokeOrganizationInvitation({ organizationId: org.id, invitationId: inv.id, requestingUserId: admin.id });
    assert.equal(revoked.status, 'revoked');
    const pending = await clerk.organizations.getOrganizationInvitationList({ organizationId: org.id, status: ['pending'] });
    assert.equal(pending.totalCount, 2);
    const all = await clerk.organizations.getOrganizationInvitationList({ organizationId: org.id });
    assert.equal(all.totalCount, 3);
    await rejects(clerk.organizations.revokeOrganizationInvitation({ organizationId: org.id, invitationId: inv.id }), {
      status: 400,
      code: 'invitation_not_pending',
    });
  });
});

describe('organization claims in session tokens', () => {
  test('authenticateRequest(...).toAuth() gives orgId, orgRole, orgSlug, orgPermissions and has() for an admin and a member', async () => {
    const admin = await clerk.users.createUser({ emailAddress: ['t-admin@example.com'], password });
    const member = await clerk.users.createUser({ emailAddress: ['t-member@example.com'], password });
    const org = await clerk.organizations.createOrganization({ name: 'Token Family', slug: 'token-family', createdBy: admin.id });
    await clerk.organizations.createOrganizationMembership({ organizationId: org.id, userId: member.id, role: 'org:member' });

    const authOf = async (email) => {
      const { jwt } = await tokenForOrganization(lk.url, email, password, org.id);
      const state = await clerk.authenticateRequest(new Request(`${lk.url}/api/orgs/${org.id}/data`, { headers: { authorization: `Bearer ${jwt}` } }), {
        authorizedParties: [lk.url],
      });
      assert.equal(state.status, 'signed-in', state.reason);
      return state.toAuth();
    };

    const a = await authOf('t-admin@example.com');
    assert.equal(a.orgId, org.id);
    assert.equal(a.orgSlug, 'token-family');
    assert.equal(a.orgRole, 'org:admin');
    assert.deepEqual([...a.orgPermissions].sort(), ['org:invoices:create', 'org:invoices:read']);
    assert.equal(a.has({ role: 'org:admin' }), true);
    assert.equal(a.has({ role: 'admin' }), true, 'with or without org:');
    assert.equal(a.has({ permission: 'org:invoices:create' }), true);
    assert.equal(a.has({ role: 'org:member' }), false);

    const m = await authOf('t-member@example.com');
    assert.equal(m.orgId, org.id);
    assert.equal(m.orgRole, 'org:member');
    assert.deepEqual(m.orgPermissions, []);
    assert.equal(m.has({ role: 'org:member' }), true);
    assert.equal(m.has({ role: 'org:admin' }), false);
    assert.equal(m.has({ permission: 'org:invoices:create' }), false);

    // A role change shows in the next token.
    await clerk.organizations.updateOrganizationMembership({ organizationId: org.id, userId: member.id, role: 'org:billing' });
    const b = await authOf('t-member@example.com');
    assert.equal(b.orgRole, 'org:billing');
    assert.equal(b.has({ permission: 'org:invoices:create' }), true);
    assert.equal(b.has({ permission: 'org:invoices:delete' }), false);
  });
});

// Runs last: it creates a permission, which org:admin then holds too, and removes it at the end.
describe('roles and permissions at run time (clerkClient.organizationRoles, organizationPermissions)', () => {
  const authIn = async (org, email) => {
    const { jwt } = await tokenForOrganization(lk.url, email, password, org);
    const request = new Request(`${lk.url}/api/reports`, { headers: { authorization: `Bearer ${jwt}` } });
    const state = await clerk.authenticateRequest(request, { authorizedParties: [lk.url] });
    assert.equal(state.status, 'signed-in', state.reason);
    return state.toAuth();
  };

  test('a permission and a role made, given to a member, changed, each change in the next token', async () => {
    const listed = await clerk.organizationPermissions.getOrganizationPermissionList({ limit: 100 });
    assert.equal(listed.totalCount, 10, 'eight system permissions and the two of the configuration');
    assert.ok(isA(listed.data[0], 'Permission'));

    const reports = await clerk.organizationPermissions.createOrganizationPermission({
      name: 'Read reports',
      key: 'org:reports:read',
      description: 'See the monthly reports',
    });
    assert.ok(isA(reports, 'Permission'));
    assert.match(reports.id, /^perm_/);
    assert.equal(reports.description, 'See the monthly reports');
    await rejects(clerk.organizationPermissions.createOrganizationPermission({ name: 'Sys', key: 'org:sys_x:read' }), {
      status: 422,
      code: 'form_param_format_invalid',
    });

    const analyst = await clerk.organizationRoles.createOrganizationRole({
      name: 'Analyst',
      key: 'org:analyst',
      description: 'Reads reports',
      permissions: [reports.id],
    });
    assert.ok(isA(analyst, 'Role'));
    assert.ok(isA(analyst.permissions[0], 'Permission'));
    assert.equal(analyst.permissions[0].key, 'org:reports:read');
    assert.equal(analyst.isCreatorEligible, false);
    await rejects(clerk.organizationRoles.createOrganizationRole({ name: 'Bad', key: 'analyst' }), {
      status: 422,
      code: 'form_param_format_invalid',
    });
    const found = await clerk.organizationRoles.getOrganizationRoleList({ query: 'analyst' });
    assert.deepEqual([found.totalCount, found.data[0].id], [1, analyst.id]);
    assert.equal((await clerk.organizationRoles.getOrganizationRole(analyst.id)).name, 'Analyst');

    const owner = await clerk.users.createUser({ emailAddress: ['r-owner@example.com'], password });
    const member = await clerk.users.createUser({ emailAddress: ['r-member@example.com'], password });
    const org = await clerk.organizations.createOrganization({ name: 'Reports', createdBy: owner.id });
    await clerk.organizations.createOrganizationMembership({ organizationId: org.id, userId: member.id, role: 'org:analyst' });
    assert.equal((await authIn(org.id, 'r-member@example.com')).has({ permission: 'org:reports:read' }), true);

    const ids = { organizationRoleId: analyst.id, permissionId: reports.id };
    const taken = await clerk.organizationRoles.removePermissionFromOrganizationRole(ids);
    assert.deepEqual(taken.permissions, []);
    assert.equal((await authIn(org.id, 'r-member@example.com')).has({ permission: 'org:reports:read' }), false);
    await clerk.organizationRoles.assignPermissionToOrganizationRole(ids);
    assert.equal((await authIn(org.id, 'r-member@example.com')).has({ permission: 'org:reports:read' }), true);

    // A new key: the member follows.
    const renamed = await clerk.organizationRoles.updateOrganizationRole({ organizationRoleId: analyst.id, key: 'org:reader' });
    assert.equal(renamed.key, 'org:reader');
    const auth = await authIn(org.id, 'r-member@example.com');
    assert.equal(auth.orgRole, 'org:reader');
    await rejects(clerk.organizationRoles.deleteOrganizationRole(analyst.id), { status: 422, code: 'role_in_use' });

    const view = await clerk.organizationPermissions.updateOrganizationPermission({ permissionId: reports.id, key: 'org:reports:view' });
    assert.equal(view.key, 'org:reports:view');
    const viewing = await authIn(org.id, 'r-member@example.com');
    assert.equal(viewing.has({ permission: 'org:reports:view' }), true);
    assert.equal(viewing.has({ permission: 'org:reports:read' }), false);

    // Cleaned up: the role once nobody holds it, the permission from every role.
    await clerk.organizations.updateOrganizationMembership({ organizationId: org.id, userId: member.id, role: 'org:member' });
    const gone = await clerk.organizationRoles.deleteOrganizationRole(analyst.id);
    assert.deepEqual([gone.id, gone.deleted], [analyst.id, true]);
    await clerk.organizationPermissions.deleteOrganizationPermission(reports.id);
    const admin = await clerk.organizationRoles.getOrganizationRole('role_admin');
    assert.ok(!admin.permissions.some((p) => p.key.startsWith('org:reports')), 'org:admin lost it too');
  });
});
