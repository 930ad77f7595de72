-- The login roles of the services (libs/common/db/roles.py), created when missing.
-- Named 0000 so that it runs before any migration that grants to them, on a new database
-- and on one migrated before roles existed alike.
--
-- Roles belong to the whole cluster, not to this database: another database's migration (the
-- test harness migrates many) may create one at the same moment, which is not an error.  They
-- are created without a password: whoever runs the platform sets one (make up, the test
-- harness, CloudNativePG's managed roles on Kubernetes), usually before this runs, and then
-- nothing happens here.  Creating a role needs CREATEROLE: without it, a missing role stops
-- the migration with a message that says what to do.

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['ipaas_auth', 'ipaas_gateway', 'ipaas_executor', 'ipaas_scheduler'] LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = name);
        BEGIN
            EXECUTE format('CREATE ROLE %I LOGIN', name);
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role % does not exist and % may not create it', name, current_user
                    USING HINT = 'create the service roles first (make up and the test harness do; on Kubernetes, '
                                 'the CloudNativePG Cluster''s managed roles), or migrate once as a role with CREATEROLE';
        END;
    END LOOP;
END
$$;
