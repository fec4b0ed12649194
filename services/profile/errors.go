package profile

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/authms/authms/services/internal/rpc"
)

// errProfileNotFound reports a user without a profile in the tenant asked
// about (the user may not exist, or belong to another tenant).
var errProfileNotFound = errors.New("profile not found")

// connectError maps every error the API returns to a Connect error: domain
// errors to their codes, anything else through rpc.Error, which logs it
// and keeps internals out of the response.
func connectError(ctx context.Context, logger *slog.Logger, procedure string, err error) error {
	switch {
	case errors.Is(err, errProfileNotFound):
		return connect.NewError(connect.CodeNotFound, errProfileNotFound)
	}
	return rpc.Error(ctx, logger, procedure, err)
}
