-- The device behind a session, as its own client's requests last showed it (docs/frontend-api.md
-- "Session activity"): the User-Agent header (capped) and the client address. Written when a
-- token is minted or the session touched and either differs; parsed only when shown.
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN ip_address TEXT;
