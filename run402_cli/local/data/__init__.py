"""The data plane: the PostgREST proxy (rest), the expose manifest (expose, expose_validate),
tenant SQL sessions (tenant_sql, project_sql), end-user auth (users, user_admin) and the
local mailbox."""
