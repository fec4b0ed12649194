package tenant

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/authms/authms/services/internal/rpc"
)

// Domain errors of the tenant service. [connectError] turns them into
// Connect codes.
var (
	// ErrTenantNotFound reports a tenant id or slug that names no tenant.
	ErrTenantNotFound = errors.New("tenant not found")
	// ErrSlugTaken reports a slug another tenant has.
	ErrSlugTaken = errors.New("a tenant with this slug already exists")
	// ErrDomainNotFound reports a domain the tenant does not have.
	ErrDomainNotFound = errors.New("domain not found")
	// ErrDomainExists reports a domain the tenant already has.
	ErrDomainExists = errors.New("the tenant already has this domain")
	// ErrDomainTaken reports a domain another tenant has verified.
	ErrDomainTaken = errors.New("another tenant has verified this domain")
	// ErrStatusOperatorOnly reports an UpdateTenant that sets the status,
	// which only the platform operator changes.
	ErrStatusOperatorOnly = errors.New("a tenant's status is changed by the platform operator only (SuspendTenant, ReactivateTenant); UpdateTenant changes the display name")
)

// connectError maps every error the API returns to a Connect error: domain
// errors to their codes, anything else through rpc.Error, which logs it
// and keeps internals out of the response.
func connectError(ctx context.Context, logger *slog.Logger, procedure string, err error) error {
	var challenge *ChallengeError
	switch {
	case errors.As(err, &challenge) && challenge.Lookup != nil:
		logger.WarnContext(ctx, "DNS lookup for a domain verification failed", "procedure", procedure, "record", challenge.Record, "err", challenge.Lookup)
		return connect.NewError(connect.CodeUnavailable, errors.New(challenge.Error()))
	case errors.As(err, &challenge):
		return connect.NewError(connect.CodeFailedPrecondition, errors.New(challenge.Error()))
	case errors.Is(err, ErrTenantNotFound):
		return connect.NewError(connect.CodeNotFound, ErrTenantNotFound)
	case errors.Is(err, ErrDomainNotFound):
		return connect.NewError(connect.CodeNotFound, ErrDomainNotFound)
	case errors.Is(err, ErrSlugTaken):
		return connect.NewError(connect.CodeAlreadyExists, ErrSlugTaken)
	case errors.Is(err, ErrDomainExists):
		return connect.NewError(connect.CodeAlreadyExists, ErrDomainExists)
	case errors.Is(err, ErrDomainTaken):
		return connect.NewError(connect.CodeAlreadyExists, ErrDomainTaken)
	case errors.Is(err, ErrStatusOperatorOnly):
		return connect.NewError(connect.CodePermissionDenied, ErrStatusOperatorOnly)
	}
	return rpc.Error(ctx, logger, procedure, err)
}
