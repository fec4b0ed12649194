package billing

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/authms/authms/services/internal/rpc"
)

// errCustomerNotFound reports a user billing does not know in the tenant
// asked about: not registered, of another tenant, or not projected yet.
var errCustomerNotFound = errors.New("customer not found")

// connectError maps every error the API returns to a Connect error: domain
// errors to their codes, anything else through rpc.Error, which logs it
// and keeps internals (SQL, keys, ciphertexts) out of the response.
func connectError(ctx context.Context, logger *slog.Logger, procedure string, err error) error {
	if errors.Is(err, errCustomerNotFound) {
		return connect.NewError(connect.CodeNotFound, errCustomerNotFound)
	}
	return rpc.Error(ctx, logger, procedure, err)
}
