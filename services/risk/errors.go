package risk

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/authms/authms/services/internal/rpc"
)

// Domain errors of the risk service. [connectError] turns them into
// Connect codes.
var (
	// ErrAttemptNotFound reports an attempt id AttemptLogin did not return
	// in the tenant (or that was pruned, a day later).
	ErrAttemptNotFound = errors.New("login attempt not found")
)

// connectError maps every error the API returns to a Connect error: domain
// errors to their codes, anything else through rpc.Error, which logs it
// and keeps internals out of the response.
func connectError(ctx context.Context, logger *slog.Logger, procedure string, err error) error {
	if errors.Is(err, ErrAttemptNotFound) {
		return connect.NewError(connect.CodeNotFound, ErrAttemptNotFound)
	}
	return rpc.Error(ctx, logger, procedure, err)
}
