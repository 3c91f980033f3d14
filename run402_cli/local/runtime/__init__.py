"""What the gateway runs on: the private PostgreSQL cluster (pgcluster, pginit, pgbin), PostgREST
(postgrest), the gateway process (server) and its client side (supervisor), the data dir
(layout), process checks (procs), the watchdog and statement reaper, and the metadata pool and
bootstrap (db, meta.sql, tenant_guard.sql)."""
