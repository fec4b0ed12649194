-- name: InsertTenant :exec
INSERT INTO tenants (
    id, slug, display_name, status,
    password_min_length, password_check_breached, password_history_size,
    mfa_requirement,
    access_token_ttl_seconds, refresh_token_ttl_seconds, refresh_reuse_grace_seconds,
    lockout_max_failures, lockout_window_seconds, lockout_duration_seconds,
    branding_name, branding_primary_color, branding_logo_ref,
    version, created_at, updated_at
) VALUES (
    @id, @slug, @display_name, @status,
    @password_min_length, @password_check_breached, @password_history_size,
    @mfa_requirement,
    @access_token_ttl_seconds, @refresh_token_ttl_seconds, @refresh_reuse_grace_seconds,
    @lockout_max_failures, @lockout_window_seconds, @lockout_duration_seconds,
    @branding_name, @branding_primary_color, @branding_logo_ref,
    @version, @created_at, @updated_at
);

-- name: GetTenant :one
SELECT id, slug, display_name, status,
       password_min_length, password_check_breached, password_history_size,
       mfa_requirement,
       access_token_ttl_seconds, refresh_token_ttl_seconds, refresh_reuse_grace_seconds,
       lockout_max_failures, lockout_window_seconds, lockout_duration_seconds,
       branding_name, branding_primary_color, branding_logo_ref,
       version, created_at, updated_at
FROM tenants
WHERE id = @id;

-- name: GetTenantBySlug :one
SELECT id, slug, display_name, status,
       password_min_length, password_check_breached, password_history_size,
       mfa_requirement,
       access_token_ttl_seconds, refresh_token_ttl_seconds, refresh_reuse_grace_seconds,
       lockout_max_failures, lockout_window_seconds, lockout_duration_seconds,
       branding_name, branding_primary_color, branding_logo_ref,
       version, created_at, updated_at
FROM tenants
WHERE slug = @slug;

-- name: ListTenants :many
-- ListTenants returns the oldest tenants.
SELECT id, slug, display_name, status,
       password_min_length, password_check_breached, password_history_size,
       mfa_requirement,
       access_token_ttl_seconds, refresh_token_ttl_seconds, refresh_reuse_grace_seconds,
       lockout_max_failures, lockout_window_seconds, lockout_duration_seconds,
       branding_name, branding_primary_color, branding_logo_ref,
       version, created_at, updated_at
FROM tenants
ORDER BY created_at, id
LIMIT @max_rows;

-- name: ListTenantsAfter :many
-- ListTenantsAfter continues ListTenants after the page that ended at
-- (after_time, after_id).
SELECT id, slug, display_name, status,
       password_min_length, password_check_breached, password_history_size,
       mfa_requirement,
       access_token_ttl_seconds, refresh_token_ttl_seconds, refresh_reuse_grace_seconds,
       lockout_max_failures, lockout_window_seconds, lockout_duration_seconds,
       branding_name, branding_primary_color, branding_logo_ref,
       version, created_at, updated_at
FROM tenants
WHERE (created_at, id) > (@after_time::timestamptz, @after_id::uuid)
ORDER BY created_at, id
LIMIT @max_rows;

-- name: SetTenantVersion :execrows
UPDATE tenants SET version = @version, updated_at = @updated_at
WHERE id = @id;

-- name: SetTenantInfo :execrows
UPDATE tenants SET display_name = @display_name, status = @status
WHERE id = @id;

-- name: SetPasswordPolicy :execrows
UPDATE tenants
SET password_min_length = @min_length, password_check_breached = @check_breached,
    password_history_size = @history_size
WHERE id = @id;

-- name: SetMfaPolicy :execrows
UPDATE tenants SET mfa_requirement = @requirement
WHERE id = @id;

-- name: SetSessionPolicy :execrows
UPDATE tenants
SET access_token_ttl_seconds = @access_token_ttl_seconds,
    refresh_token_ttl_seconds = @refresh_token_ttl_seconds,
    refresh_reuse_grace_seconds = @refresh_reuse_grace_seconds
WHERE id = @id;

-- name: SetLockoutPolicy :execrows
UPDATE tenants
SET lockout_max_failures = @max_failures, lockout_window_seconds = @window_seconds,
    lockout_duration_seconds = @duration_seconds
WHERE id = @id;

-- name: SetBranding :execrows
UPDATE tenants
SET branding_name = @name, branding_primary_color = @primary_color, branding_logo_ref = @logo_ref
WHERE id = @id;
