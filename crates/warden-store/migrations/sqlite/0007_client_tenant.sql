-- The tenant of an OAuth client (`warden client create --tenant`): put in
-- the `tenant` claim of the tokens it obtains with client_credentials, so
-- that the policies keep it inside its tenant. NULL: a client of no tenant.
ALTER TABLE oauth_clients ADD COLUMN tenant TEXT;
