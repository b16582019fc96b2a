-- Organizations: roles defined per instance, organizations, memberships (one role each) and
-- invitations by email. Deleting an organization removes its memberships and invitations.
CREATE TABLE org_roles (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    -- JSON array of permission keys (`org:<feature>:<action>`).
    permissions TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    image_url TEXT,
    public_metadata TEXT NOT NULL,
    private_metadata TEXT NOT NULL,
    max_allowed_memberships BIGINT NOT NULL,
    admin_delete_enabled BOOLEAN NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX organizations_created_at ON organizations (created_at, id);

CREATE TABLE organization_memberships (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    public_metadata TEXT NOT NULL,
    private_metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX organization_memberships_org_user ON organization_memberships (organization_id, user_id);
CREATE INDEX organization_memberships_user ON organization_memberships (user_id);

CREATE TABLE organization_invitations (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    status TEXT NOT NULL,
    public_metadata TEXT NOT NULL,
    private_metadata TEXT NOT NULL,
    inviter_user_id TEXT,
    token_digest TEXT NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX organization_invitations_org ON organization_invitations (organization_id, created_at);
CREATE INDEX organization_invitations_email ON organization_invitations (email);
