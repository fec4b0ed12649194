package identity

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/authms/authms/services/internal/rpc"
)

// Domain errors of the identity service. [connectError] turns them into
// Connect codes.
var (
	// ErrUserNotFound reports a user that does not exist in the tenant
	// asked about (it may exist in another tenant).
	ErrUserNotFound = errors.New("user not found")
	// ErrEmailTaken reports an email another user of the tenant already has
	// (compared case-insensitively).
	ErrEmailTaken = errors.New("a user with this email already exists in the tenant")
)

// connectError maps every error the API returns to a Connect error: domain
// errors to their codes, anything else through rpc.Error, which logs it
// and keeps internals (SQL, hashes) out of the response.
func connectError(ctx context.Context, logger *slog.Logger, procedure string, err error) error {
	switch {
	case errors.Is(err, ErrUserNotFound):
		return connect.NewError(connect.CodeNotFound, ErrUserNotFound)
	case errors.Is(err, ErrEmailTaken):
		return connect.NewError(connect.CodeAlreadyExists, ErrEmailTaken)
	}
	return rpc.Error(ctx, logger, procedure, err)
}
