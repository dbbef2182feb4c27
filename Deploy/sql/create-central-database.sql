-- Run once as a PostgreSQL superuser on the bureau's server to create the central database and
-- the role cardsync connects as. The schema itself is created and upgraded by cardsync:
--   cardsync db migrate --database 'postgresql://cardsync_owner@HOST/cardsync'
-- psql -v owner_password="'...'" -f create-central-database.sql
CREATE ROLE cardsync_owner LOGIN PASSWORD :owner_password;
CREATE DATABASE cardsync OWNER cardsync_owner ENCODING 'UTF8' TEMPLATE template0;
\connect cardsync
REVOKE ALL ON SCHEMA public FROM PUBLIC;
