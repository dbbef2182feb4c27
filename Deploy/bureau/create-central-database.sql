-- The superuser's part of setting up cardsync on an existing PostgreSQL server: the schema
-- owner's role and the central database. Deploy/bureau/setup-central.sh runs it; by hand:
--
--   export CARDSYNC_OWNER_VERIFIER='SCRAM-SHA-256$4096:…'
--   psql -X -v owner=cardsync_owner -v database=cardsync -f Deploy/bureau/create-central-database.sql
--
-- The owner's password arrives as a SCRAM verifier (setup-central.sh computes it on this side),
-- read from the environment with \getenv: never on a command line (where `ps` shows it), never
-- as plain text to the server (whose log might keep it). Names and values reach SQL only through
-- psql's :'var' quoting and format(%I, %L), never spliced into statement text.
-- Safe to run again: what exists is kept; the owner's attributes and password are set again.
-- Needs psql 15 or later (\getenv); the server may be older.

\set ON_ERROR_STOP on
\getenv owner_verifier CARDSYNC_OWNER_VERIFIER
\if :{?owner_verifier}
\else
  \set owner_verifier ''
\endif

-- The names, for the checks below (PL/pgSQL cannot see psql variables; settings it can read).
SELECT set_config('cardsync_setup.owner', :'owner', false) AS owner,
       set_config('cardsync_setup.database', :'database', false) AS database,
       set_config('cardsync_setup.has_verifier', (:'owner_verifier' LIKE 'SCRAM-SHA-256$%')::text, false) AS verifier
\gset setup_

DO $$ BEGIN
    -- Only a superuser may create a role with CREATEROLE and a database for another role.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'run this as a PostgreSQL superuser (connected as %)', current_user;
    END IF;
    IF NOT current_setting('cardsync_setup.has_verifier')::boolean THEN
        RAISE EXCEPTION 'CARDSYNC_OWNER_VERIFIER must hold the owner''s SCRAM-SHA-256 verifier';
    END IF;
    -- ALTER ROLE below would take superuser away from a role that has it.
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = current_setting('cardsync_setup.owner') AND rolsuper) THEN
        RAISE EXCEPTION 'role % is a superuser: the schema owner must be a role of its own', current_setting('cardsync_setup.owner');
    END IF;
    -- A database of this name with another owner is somebody else's: stop rather than take it.
    IF EXISTS (SELECT FROM pg_database WHERE datname = current_setting('cardsync_setup.database')
               AND pg_get_userbyid(datdba) <> current_setting('cardsync_setup.owner')) THEN
        RAISE EXCEPTION 'database % exists and belongs to another role: choose another name, or make % its owner',
            current_setting('cardsync_setup.database'), current_setting('cardsync_setup.owner');
    END IF;
END $$;

-- Statements carrying a verifier stay out of the server log even where log_statement = 'ddl'
-- or 'all' is set for auditing (a superuser may change these for its own session).
SET log_statement = 'none';
SET log_min_duration_statement = -1;

-- The owner changes the schema (db migrate) and creates the group roles and, through
-- `cardsync agency credentials`, one login role per agency: hence CREATEROLE. Nothing more: no
-- superuser, no CREATEDB, no replication, no row-security bypass (docs/security.md).
SELECT format('CREATE ROLE %I', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN CREATEROLE NOSUPERUSER NOCREATEDB NOREPLICATION NOBYPASSRLS PASSWORD %L',
              :'owner', :'owner_verifier') \gexec
\unset owner_verifier
RESET log_statement;
RESET log_min_duration_statement;

-- UTF8 whatever the server's default: names and addresses are Chinese. template0, because
-- template1 may carry another encoding or objects someone added there.
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'database', :'owner', 'UTF8')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec

-- Only the roles cardsync grants it to may connect: `cardsync db roles` grants CONNECT to
-- cardsync_merge (and so cardsync_bureau) and cardsync_agency. The owner may as owner.
SELECT format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', :'database') \gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', :'database', :'owner') \gexec

\connect :"database"
-- Everything of cardsync's lives in schema cardsync; nobody needs the public schema.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
