-- What PostgreSQL itself enforces on every project's SQL, however it is spelled or wrapped
-- (plain statements, DO blocks, EXECUTE of built strings, functions, migrations, expose policies).
-- Idempotent: run by the superuser at every gateway start, after meta.sql.
--
-- Every role a project has (owner, its login role, anon, authenticated, service) is a member of
-- run402_tenant. The role holds no privileges but set_config() (below): membership marks "this
-- session or this code acts for a tenant", which the event triggers look at. On PostgreSQL 16+
-- the membership is granted WITH SET FALSE, so no tenant can SET ROLE run402_tenant.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'run402_tenant') THEN
        CREATE ROLE run402_tenant NOLOGIN NOINHERIT;
    END IF;
END $$;

-- Grants are the expose manifest's job: a project's SQL may not GRANT, REVOKE or change default
-- privileges, so nothing it creates can become readable by anon, by PUBLIC or by another project.
CREATE OR REPLACE FUNCTION run402_meta.refuse_tenant_privilege_ddl() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    -- Tenant code: a tenant session, or tenant code reached through PostgREST (a SECURITY DEFINER
    -- function of the owner). The gateway's own work runs as the superuser and is never refused,
    -- including the REVOKE the function rules below issue. Inline on purpose: the caller is a
    -- tenant, which cannot reach functions in run402_meta.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND (pg_has_role(session_user, 'run402_tenant', 'MEMBER')
            OR pg_has_role(current_user, 'run402_tenant', 'MEMBER')) THEN
        RAISE EXCEPTION '% is not allowed in project SQL', tg_tag
            USING ERRCODE = '42501',
                  HINT = 'Grants and policies come from the expose manifest (run402 projects apply-expose, '
                         'or database.expose in a deploy)';
    END IF;
END $$;

-- Settings a function could pin for itself (CREATE FUNCTION ... SET work_mem = '4GB') to escape
-- the limits the gateway sets for project sessions.
CREATE OR REPLACE FUNCTION run402_meta.tenant_function_rules() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    cmd record;
    setting text;
BEGIN
    FOR cmd IN SELECT * FROM pg_event_trigger_ddl_commands()
               WHERE object_type IN ('function', 'procedure') LOOP
        -- Only functions in a project's schema; the gateway's own (auth.uid(), ...) stay callable.
        CONTINUE WHEN NOT EXISTS (
            SELECT 1 FROM pg_namespace n WHERE n.nspname = cmd.schema_name
               AND pg_has_role(n.nspowner, 'run402_tenant', 'MEMBER'));
        FOR setting IN SELECT split_part(c, '=', 1) FROM pg_proc p, unnest(p.proconfig) c
                       WHERE p.oid = cmd.objid LOOP
            IF setting IN ('statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout',
                           'idle_session_timeout', 'work_mem', 'maintenance_work_mem', 'hash_mem_multiplier',
                           'temp_buffers', 'transaction_timeout') THEN
                RAISE EXCEPTION 'a project function may not set %', setting
                    USING ERRCODE = '42501', HINT = 'Resource limits are fixed per project';
            END IF;
        END LOOP;
        -- Dark by default: a new function is nobody's to call until the manifest's rpcs[] lists it.
        -- (PostgreSQL grants EXECUTE to PUBLIC on every new function; per-schema default
        -- privileges cannot take that away, an event trigger can.)
        IF cmd.command_tag IN ('CREATE FUNCTION', 'CREATE PROCEDURE') THEN
            EXECUTE format('REVOKE EXECUTE ON %s %s FROM PUBLIC', cmd.object_type, cmd.object_identity);
        END IF;
    END LOOP;
END $$;

-- Event triggers cannot be CREATE OR REPLACEd: (re)create them when missing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'run402_refuse_tenant_privilege_ddl') THEN
        CREATE EVENT TRIGGER run402_refuse_tenant_privilege_ddl ON ddl_command_start
            WHEN TAG IN ('GRANT', 'REVOKE', 'ALTER DEFAULT PRIVILEGES')
            EXECUTE FUNCTION run402_meta.refuse_tenant_privilege_ddl();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'run402_tenant_function_rules') THEN
        CREATE EVENT TRIGGER run402_tenant_function_rules ON ddl_command_end
            WHEN TAG IN ('CREATE FUNCTION', 'CREATE PROCEDURE', 'ALTER FUNCTION', 'ALTER PROCEDURE')
            EXECUTE FUNCTION run402_meta.tenant_function_rules();
    END IF;
END $$;

-- set_config() is SET in function form: `select set_config('statement_timeout', '0', false)`
-- would lift a limit from inside any query of a project session. PostgREST needs it, as its login
-- role and after it switched to the request's role (anon / authenticated / service, which
-- inherit run402_tenant's grants); project sessions (the owner and the login role are NOINHERIT)
-- do not get it. What a PostgREST request sets for itself the reaper still bounds.
REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) TO run402_authenticator, run402_tenant;

-- Projects created before these rules existed: mark their roles, take PUBLIC's EXECUTE away
-- from their functions (an exposed RPC keeps the grants its manifest gave), and the global
-- default privilege (the per-schema one did not reach PUBLIC).
DO $$
DECLARE
    slot text;
    suffix text;
BEGIN
    FOR slot IN SELECT schema_slot FROM run402_meta.projects WHERE status <> 'purged' LOOP
        CONTINUE WHEN to_regnamespace(slot) IS NULL;
        FOREACH suffix IN ARRAY ARRAY['owner', 'sql', 'anon', 'authenticated', 'service'] LOOP
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = slot || '_' || suffix) THEN
                EXECUTE format('GRANT run402_tenant TO %I', slot || '_' || suffix)
                     || CASE WHEN current_setting('server_version_num')::int >= 160000
                             THEN ' WITH SET FALSE' ELSE '' END;
            END IF;
        END LOOP;
        EXECUTE format('REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA %I FROM PUBLIC', slot);
        EXECUTE format('REVOKE EXECUTE ON ALL PROCEDURES IN SCHEMA %I FROM PUBLIC', slot);
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC',
                       slot || '_owner');
    END LOOP;
END $$;

-- Function source is not another project's business. pg_proc is readable by PUBLIC, source
-- included; every column but the source (prosrc, probin, prosqlbody) stays readable, so psql's
-- \df, ORMs and PostgreSQL itself keep working. PostgREST's schema cache reads all of it as
-- its login role. pg_get_functiondef() would hand the source back: it is not PUBLIC's either.
-- (Names of other projects' tables, columns and functions stay visible in the catalogs: there
-- are no per-row privileges on catalogs. A known limit, documented in the README.)
DO $$
DECLARE
    cols text;
BEGIN
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
      FROM pg_attribute
     WHERE attrelid = 'pg_catalog.pg_proc'::regclass AND attnum > 0 AND NOT attisdropped
       AND attname NOT IN ('prosrc', 'probin', 'prosqlbody');
    REVOKE SELECT ON pg_catalog.pg_proc FROM PUBLIC;
    EXECUTE format('GRANT SELECT (%s) ON pg_catalog.pg_proc TO PUBLIC', cols);
    GRANT SELECT ON pg_catalog.pg_proc TO run402_authenticator;
END $$;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_get_functiondef(oid) FROM PUBLIC;
