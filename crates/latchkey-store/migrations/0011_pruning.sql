-- Housekeeping finds abandoned sign-in and sign-up attempts and idle clients by these.
CREATE INDEX sign_ins_abandon ON sign_ins (abandon_at);
CREATE INDEX sign_ups_abandon ON sign_ups (abandon_at);
CREATE INDEX clients_updated ON clients (updated_at);
