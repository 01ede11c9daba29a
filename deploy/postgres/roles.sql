-- autotune: database and least-privilege roles.
--
-- Run as a PostgreSQL administrator (superuser, or on a managed service the admin role it
-- gives you), with psql 15 or newer (\getenv). Passwords come from environment variables,
-- never from this file:
--
--   export AUTOTUNE_WORKER_PASSWORD=$(openssl rand -hex 24)      # letters/digits only: no
--   export AUTOTUNE_DASHBOARD_PASSWORD=$(openssl rand -hex 24)   # URL-escaping needed later
--   psql "postgresql://ADMIN@DB-HOST:5432/postgres?sslmode=require" -v ON_ERROR_STOP=1 \
--        -f deploy/postgres/roles.sql
--
-- docker-compose runs it once, when the postgres volume is first initialised
-- (/docker-entrypoint-initdb.d, with the two variables in the container's environment).
-- Safe to run again: it creates what is missing and (re)sets both passwords.
--
-- Roles:
--   autotune_worker     autotune create / worker / status / report / delete. Optuna creates
--                       its tables on first use, and autotune its rung tables, so this role
--                       may create tables in schema public (and owns what it creates).
--   autotune_dashboard  optuna-dashboard. It has no authentication and would accept writes
--                       (notes, deleting studies), so it gets SELECT only: read, never write.

\set ON_ERROR_STOP on

-- Passwords from the environment (psql variables :worker_password, :dashboard_password).
\getenv worker_password AUTOTUNE_WORKER_PASSWORD
\getenv dashboard_password AUTOTUNE_DASHBOARD_PASSWORD
\if :{?worker_password}
\else
  \echo 'roles.sql: set AUTOTUNE_WORKER_PASSWORD in the environment of psql'
  SELECT 1 / 0 AS "AUTOTUNE_WORKER_PASSWORD is not set";
\endif
\if :{?dashboard_password}
\else
  \echo 'roles.sql: set AUTOTUNE_DASHBOARD_PASSWORD in the environment of psql'
  SELECT 1 / 0 AS "AUTOTUNE_DASHBOARD_PASSWORD is not set";
\endif
-- Refuse short passwords and the placeholders of deploy/.env.example.
SELECT length(:'worker_password') >= 16
       AND length(:'dashboard_password') >= 16
       AND :'worker_password' NOT ILIKE '%change%me%'
       AND :'dashboard_password' NOT ILIKE '%change%me%'
       AND :'worker_password' <> :'dashboard_password' AS passwords_ok \gset
\if :passwords_ok
\else
  \echo 'roles.sql: passwords must be 16+ characters, differ, and not be the CHANGE_ME placeholders'
  SELECT 1 / 0 AS "weak or placeholder password";
\endif

-- The database. docker-compose creates it already (POSTGRES_DB=autotune).
SELECT 'CREATE DATABASE autotune'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'autotune') \gexec

-- The roles: created with PostgreSQL's defaults (NOSUPERUSER NOCREATEDB NOCREATEROLE
-- NOREPLICATION NOBYPASSRLS: no power beyond the grants below); passwords set separately so
-- that a re-run rotates them.
SELECT 'CREATE ROLE autotune_worker'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'autotune_worker') \gexec
SELECT 'CREATE ROLE autotune_dashboard'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'autotune_dashboard') \gexec
ALTER ROLE autotune_worker LOGIN PASSWORD :'worker_password';
ALTER ROLE autotune_dashboard LOGIN PASSWORD :'dashboard_password';
-- Roles that existed before with more power than that are an error, not something to keep.
SELECT NOT EXISTS (
  SELECT FROM pg_roles
   WHERE rolname IN ('autotune_worker', 'autotune_dashboard')
     AND (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls)
) AS roles_plain \gset
\if :roles_plain
\else
  \echo 'roles.sql: autotune_worker/autotune_dashboard have SUPERUSER, CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS: remove it'
  SELECT 1 / 0 AS "roles with too much power";
\endif
-- The dashboard's sessions are read-only even if a write privilege were granted by mistake
-- later: any INSERT/UPDATE/DELETE/DDL fails with "read-only transaction".
ALTER ROLE autotune_dashboard SET default_transaction_read_only = on;
-- Why: a worker frozen inside a transaction (SIGSTOP, a paused VM) would keep its row locks
-- and the campaign's advisory lock for ever; the server ends such a session after 120 s
-- (autotune's longest lock lease is far shorter). autotune also SETs this per session on
-- connect, but behind PgBouncer in transaction mode a SET stays on the server connection it
-- ran on, and the worker's later transactions run on others: only the role's setting
-- reaches every server connection (tests/test_pgbouncer.py shows both).
ALTER ROLE autotune_worker SET idle_in_transaction_session_timeout = '120s';
-- One dashboard needs a handful of connections; cap it so it cannot starve the workers.
ALTER ROLE autotune_dashboard CONNECTION LIMIT 10;

-- Database level.
-- Why: by default every role (PUBLIC) may connect to a new database and create temporary
-- tables in it; only our two roles (and the administrator) should.
REVOKE ALL ON DATABASE autotune FROM PUBLIC;
-- Why: workers and the dashboard must open sessions on this database; nothing else
-- (no TEMPORARY: neither Optuna nor autotune create temporary tables).
GRANT CONNECT ON DATABASE autotune TO autotune_worker, autotune_dashboard;

\connect autotune

-- Schema public.
-- Why: before PostgreSQL 15 every role may create tables in public; take that away so only
-- the worker role can (a no-op on 15 and newer, where it is already the default).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
-- Why: Optuna creates its tables (studies, trials, ...) and autotune its rung tables
-- (autotune_rung_values, autotune_rung_state) on first use, as the connecting role; USAGE to
-- see objects in the schema, CREATE to create them. The worker then owns those tables.
GRANT USAGE, CREATE ON SCHEMA public TO autotune_worker;
-- Why: the dashboard must resolve table names in public; USAGE lets it look, not create.
GRANT USAGE ON SCHEMA public TO autotune_dashboard;

-- Worker: data manipulation on tables that exist already (e.g. created by an administrator
-- running `optuna storage upgrade`); tables the worker creates itself it owns anyway.
-- Why SELECT/INSERT/UPDATE/DELETE: trials are created, updated, and deleted (`autotune delete`).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO autotune_worker;
-- Why: Optuna's primary keys are serial columns; INSERT needs nextval (USAGE, UPDATE).
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO autotune_worker;
-- Why: the same for tables and sequences the administrator (whoever runs this file) creates
-- in the future, e.g. by a schema upgrade.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO autotune_worker;
-- Why: ... and their sequences, for INSERT as above.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO autotune_worker;

-- Is the administrator running this file a superuser? (Managed services: usually not.)
SELECT NOT rolsuper AS admin_needs_membership FROM pg_roles WHERE rolname = current_user \gset
\if :admin_needs_membership
  -- Why: ALTER DEFAULT PRIVILEGES FOR ROLE autotune_worker (below) is allowed only to
  -- superusers and members of autotune_worker. The admin may grant it to itself (it created
  -- the role); it can already change that role's password, so this gives it nothing new.
  GRANT autotune_worker TO CURRENT_USER;
\endif

-- Dashboard: SELECT, nothing else.
-- Why: reading studies, trials, parameters, values and attributes is all the dashboard needs.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO autotune_dashboard;
-- Why: the tables do not exist yet when this runs the first time; the worker role creates
-- them. Grant SELECT on every table the worker (or the administrator) creates from now on.
ALTER DEFAULT PRIVILEGES FOR ROLE autotune_worker IN SCHEMA public
  GRANT SELECT ON TABLES TO autotune_dashboard;
-- Why: ... and on tables the administrator creates (e.g. by a schema upgrade).
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT SELECT ON TABLES TO autotune_dashboard;
-- Explicitly no writes for the dashboard, now or in the future (revoking what was never
-- granted is a no-op; it is here so that the intent is checked and visible).
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public FROM autotune_dashboard;
REVOKE USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA public FROM autotune_dashboard;
REVOKE CREATE ON SCHEMA public FROM autotune_dashboard;

\echo 'roles.sql: database autotune with roles autotune_worker and autotune_dashboard is ready'
