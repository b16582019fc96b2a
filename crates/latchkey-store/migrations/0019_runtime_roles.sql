-- Roles and permissions managed at run time through the Backend API
-- (docs/organization-roles.md). Roles gain the id Clerk's role objects carry; the rows seeded
-- from configuration before this migration get the id latchkey always showed for them,
-- `role_<name>`; a row an older binary inserts during a rolling upgrade has none, and is read
-- with that same id. Permissions become rows of their own, with a name and description.
ALTER TABLE org_roles ADD COLUMN id TEXT;
UPDATE org_roles SET id = 'role_' || substr(key, 5) WHERE id IS NULL;
CREATE UNIQUE INDEX org_roles_id ON org_roles (id);

-- The row every change of roles locks first (seeding included), so that changes happen one at a
-- time on PostgreSQL as they do on SQLite.
INSERT INTO settings (key, value) VALUES ('org_roles_lock', '');

CREATE TABLE org_permissions (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    -- `system` (Clerk's org:sys_* permissions) or `user` (the app's own).
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
