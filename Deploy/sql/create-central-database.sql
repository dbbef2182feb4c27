-- Run once as a PostgreSQL superuser on the bureau's server to create the central database and
-- its owner. The owner needs CREATEROLE: cardsync creates the group roles and, through
-- `cardsync agency credentials`, one login role per agency (docs/security.md).
-- The schema, the group roles and their grants are created and upgraded by cardsync:
--   cardsync db migrate --database 'postgresql://cardsync_owner@HOST/cardsync?sslmode=verify-full'
--   cardsync db roles   --database 'postgresql://cardsync_owner@HOST/cardsync?sslmode=verify-full'
-- psql -v owner_password="'...'" -f create-central-database.sql
CREATE ROLE cardsync_owner LOGIN CREATEROLE PASSWORD :owner_password;
CREATE DATABASE cardsync OWNER cardsync_owner ENCODING 'UTF8' TEMPLATE template0;
\connect cardsync
REVOKE ALL ON SCHEMA public FROM PUBLIC;
-- Only the roles cardsync grants it to may connect.
REVOKE CONNECT, TEMPORARY ON DATABASE cardsync FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE cardsync TO cardsync_owner;
-- `cardsync db roles` lets cardsync_merge and cardsync_agency connect (cardsync_bureau is a
-- member of cardsync_merge). Logins for the merge service and staff:
--   CREATE ROLE merge_service LOGIN PASSWORD '...' IN ROLE cardsync_merge;
--   CREATE ROLE clerk_wang    LOGIN PASSWORD '...' IN ROLE cardsync_bureau;
