package identity

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"connectrpc.com/connect"

	"github.com/authms/authms/services/internal/rpc"
)

// Domain errors of the identity service. [connectError] turns them into
// Connect codes.
var (
	// ErrUserNotFound reports a user that does not exist in the tenant
	// asked about (it may exist in another tenant).
	ErrUserNotFound = errors.New("user not found")
	// ErrTenantNotFound reports a registration or import in a tenant
	// identity does not know (not created, or not projected yet) or that
	// is not active.
	ErrTenantNotFound = errors.New("tenant not found")
	// ErrEmailTaken reports an email another user of the tenant already has
	// (compared case-insensitively).
	ErrEmailTaken = errors.New("a user with this email already exists in the tenant")
	// ErrInvalidCredentials reports a failed authentication, whatever the
	// reason (unknown email, wrong password, disabled user): one error, so
	// callers cannot tell the reasons apart.
	ErrInvalidCredentials = errors.New("invalid email or password")
	// ErrInvalidToken reports a verification or reset token that is
	// unknown, used, superseded by a newer one or expired: one error, so
	// callers cannot tell the cases apart.
	ErrInvalidToken = errors.New("the token is invalid or has expired")
	// ErrEmailVerified reports a verification request for a verified email.
	ErrEmailVerified = errors.New("the email is verified already")
	// ErrRoleExists reports a role name the tenant has already (admin
	// included).
	ErrRoleExists = errors.New("a role with this name already exists in the tenant")
	// ErrRoleNotFound reports a role the tenant does not have.
	ErrRoleNotFound = errors.New("role not found")
	// ErrBuiltInRole reports a change to the built-in admin role.
	ErrBuiltInRole = errors.New("the built-in admin role cannot be changed")
	// ErrOwnAdmin refuses an admin's taking away their own admin role,
	// disabling or deleting themselves: done by the tenant's only admin,
	// it would leave the tenant with none, and no admin could undo it.
	// Another admin, or the operator for roles, may.
	ErrOwnAdmin = errors.New("an admin cannot remove their own admin role, disable or delete themselves; ask another admin of the tenant")
)

// ThrottledError refuses a request anybody may send (a password reset
// request, a registration): its client address sent too many of them. It
// says nothing of the email.
type ThrottledError struct {
	// Requests names what the address sent too many of ("password reset
	// requests", "registrations").
	Requests   string
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return "too many " + e.Requests + " from this address; retry later"
}

// invalidTenant is a tenant id that is not a UUID.
var invalidTenant = &rpc.InvalidFieldError{Field: "tenant_id", Rule: "string.uuid", Message: "must be a UUID"}

// connectError maps every error the API returns to a Connect error: domain
// errors to their codes, anything else through rpc.Error, which logs it
// and keeps internals (SQL, hashes) out of the response; risk's refusal of
// a password check (rpc.DeniedError) is answered there as Login's. Every
// ThrottledError is answered alike: ResourceExhausted with retry info.
func connectError(ctx context.Context, logger *slog.Logger, procedure string, err error) error {
	var throttled *ThrottledError
	switch {
	case errors.Is(err, ErrUserNotFound):
		return connect.NewError(connect.CodeNotFound, ErrUserNotFound)
	case errors.Is(err, ErrTenantNotFound):
		return connect.NewError(connect.CodeNotFound, ErrTenantNotFound)
	case errors.Is(err, ErrEmailTaken):
		return connect.NewError(connect.CodeAlreadyExists, ErrEmailTaken)
	case errors.Is(err, ErrRoleExists):
		return connect.NewError(connect.CodeAlreadyExists, ErrRoleExists)
	case errors.Is(err, ErrRoleNotFound):
		return connect.NewError(connect.CodeNotFound, ErrRoleNotFound)
	case errors.Is(err, ErrBuiltInRole):
		return connect.NewError(connect.CodeFailedPrecondition, ErrBuiltInRole)
	case errors.Is(err, ErrInvalidToken):
		return rpc.FieldError("token", "token.valid", ErrInvalidToken.Error())
	case errors.Is(err, ErrOwnAdmin):
		return connect.NewError(connect.CodeFailedPrecondition, ErrOwnAdmin)
	case errors.Is(err, ErrEmailVerified):
		return connect.NewError(connect.CodeFailedPrecondition, ErrEmailVerified)
	case errors.Is(err, ErrInvalidCredentials):
		return connect.NewError(connect.CodeUnauthenticated, ErrInvalidCredentials)
	case errors.As(err, &throttled):
		return rpc.RetryLater(connect.CodeResourceExhausted, throttled.Error(), throttled.RetryAfter)
	}
	return rpc.Error(ctx, logger, procedure, err)
}
