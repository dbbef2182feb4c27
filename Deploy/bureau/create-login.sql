-- A login of the bureau's: the merge service (member of cardsync_merge) or a member of staff
-- (member of cardsync_bureau). Deploy/bureau/setup-central.sh runs it as a superuser after
-- `cardsync db roles` has created the groups; by hand:
--
--   export CARDSYNC_LOGIN_VERIFIER='SCRAM-SHA-256$4096:…'
--   psql -X -d cardsync -v login=cardsync_merge_service -v group=cardsync_merge -v connection_limit=8 \
--        -f Deploy/bureau/create-login.sql
--
-- As in create-central-database.sql, the password arrives as a SCRAM verifier through the
-- environment, and every name through psql's quoting. Safe to run again (the password is set
-- again, memberships are granted once).

\set ON_ERROR_STOP on
\getenv login_verifier CARDSYNC_LOGIN_VERIFIER
\if :{?login_verifier}
\else
  \set login_verifier ''
\endif
\if :{?connection_limit}
\else
  \set connection_limit -1
\endif

SELECT set_config('cardsync_setup.login', :'login', false) AS login,
       set_config('cardsync_setup.group', :'group', false) AS "group",
       set_config('cardsync_setup.has_verifier', (:'login_verifier' LIKE 'SCRAM-SHA-256$%')::text, false) AS verifier
\gset setup_

DO $$ BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'run this as a PostgreSQL superuser (connected as %)', current_user;
    END IF;
    IF NOT current_setting('cardsync_setup.has_verifier')::boolean THEN
        RAISE EXCEPTION 'CARDSYNC_LOGIN_VERIFIER must hold the login''s SCRAM-SHA-256 verifier';
    END IF;
    IF current_setting('cardsync_setup.group') NOT IN ('cardsync_merge', 'cardsync_bureau') THEN
        RAISE EXCEPTION 'a bureau login joins cardsync_merge or cardsync_bureau, not %', current_setting('cardsync_setup.group');
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = current_setting('cardsync_setup.group')) THEN
        RAISE EXCEPTION 'role % does not exist yet: run cardsync db roles as the schema owner first', current_setting('cardsync_setup.group');
    END IF;
    -- ALTER ROLE below would strip a superuser or the owner of what they need.
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = current_setting('cardsync_setup.login') AND (rolsuper OR rolcreaterole)) THEN
        RAISE EXCEPTION 'role % is a superuser or may create roles (the schema owner?): a bureau login must be a role of its own',
            current_setting('cardsync_setup.login');
    END IF;
    -- An agency's login made into the bureau's would see every agency's data.
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = current_setting('cardsync_setup.login')
               AND pg_has_role(rolname, 'cardsync_agency', 'MEMBER')) THEN
        RAISE EXCEPTION 'role % is an agency''s login (member of cardsync_agency): choose another name', current_setting('cardsync_setup.login');
    END IF;
END $$;

SET log_statement = 'none';
SET log_min_duration_statement = -1;
SELECT format('CREATE ROLE %I', :'login')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'login') \gexec
-- INHERIT: the login uses its group's privileges without SET ROLE. No other attribute: the
-- merge needs nothing beyond what `cardsync db roles` grants the group.
SELECT format('ALTER ROLE %I WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT %s PASSWORD %L',
              :'login', :'connection_limit'::integer, :'login_verifier') \gexec
\unset login_verifier
RESET log_statement;
RESET log_min_duration_statement;

SELECT format('GRANT %I TO %I', :'group', :'login')
WHERE NOT pg_has_role(:'login', :'group', 'MEMBER') \gexec
