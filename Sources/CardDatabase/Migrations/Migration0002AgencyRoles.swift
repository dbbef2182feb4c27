/// Agency database roles, for `cardsync agency credentials`.
///
/// Role names and password verifiers are values the caller passes as parameters; the function
/// quotes them with `format(%I, %L)`, so no SQL is ever assembled from values in the client.
/// Every agency role is a member of `cardsync_agency`, which holds what a sync needs.
/// (Row-level isolation between agencies is not in place yet: see docs/architecture.md.)
let migration0002AgencyRoles = Migration(
    version: 2,
    name: "agency roles",
    sql: #"""
CREATE TABLE cardsync.agency_roles (
    agency_code text PRIMARY KEY REFERENCES cardsync.agencies (code),
    role_name   text NOT NULL UNIQUE,
    rotated_at  timestamptz NOT NULL DEFAULT now()
);

DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardsync_agency') THEN
        CREATE ROLE cardsync_agency NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    -- Roles belong to the whole server: another database's migration created it just now.
    NULL;
END
$do$;
GRANT USAGE ON SCHEMA cardsync TO cardsync_agency;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA cardsync TO cardsync_agency;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA cardsync TO cardsync_agency;
REVOKE INSERT, UPDATE ON cardsync.agency_roles FROM cardsync_agency;

-- Creates the agency's login role, or sets a new password on it. Returns the role name.
CREATE FUNCTION cardsync.set_agency_credentials(p_agency text, p_verifier text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, cardsync AS $fn$
DECLARE
    v_role text := 'cardsync_agency_' || lower(replace(p_agency, '-', '_'));
BEGIN
    IF NOT EXISTS (SELECT 1 FROM cardsync.agencies WHERE code = p_agency) THEN
        RAISE EXCEPTION 'agency % is not registered', p_agency USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
        EXECUTE format('ALTER ROLE %I WITH LOGIN PASSWORD %L', v_role, p_verifier);
    ELSE
        EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE cardsync_agency', v_role, p_verifier);
    END IF;
    INSERT INTO cardsync.agency_roles (agency_code, role_name) VALUES (p_agency, v_role)
    ON CONFLICT (agency_code) DO UPDATE SET rotated_at = now();
    RETURN v_role;
END
$fn$;
"""#
)
