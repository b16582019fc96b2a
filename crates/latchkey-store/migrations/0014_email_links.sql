-- Email links (docs/email-links.md): a sign-in's or sign-up's link is kept like a code (its
-- keyed digest in the code columns); these say where the browser that opens it goes next, and
-- which client opened it (Clerk's `verified_at_client`).
ALTER TABLE sign_ins ADD COLUMN link_redirect_url TEXT;
ALTER TABLE sign_ins ADD COLUMN link_verified_client TEXT;
ALTER TABLE sign_ups ADD COLUMN link_redirect_url TEXT;
ALTER TABLE sign_ups ADD COLUMN link_verified_client TEXT;
