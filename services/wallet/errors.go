package wallet

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/authms/authms/services/internal/rpc"
)

// Domain errors of the wallet service. [connectError] turns them into
// Connect codes.
var (
	// ErrWalletNotFound reports a user without a wallet in the tenant asked
	// about: the user does not exist, belongs to another tenant, or was
	// registered so recently that the wallet is not projected yet.
	ErrWalletNotFound = errors.New("wallet not found")
	// ErrInsufficientBalance reports a withdrawal larger than the balance of
	// its currency.
	ErrInsufficientBalance = errors.New("insufficient balance")
)

// connectError maps every error the API returns to a Connect error: domain
// errors to their codes, anything else through rpc.Error, which logs it
// and keeps internals out of the response.
func connectError(ctx context.Context, logger *slog.Logger, procedure string, err error) error {
	switch {
	case errors.Is(err, ErrWalletNotFound):
		return connect.NewError(connect.CodeNotFound, ErrWalletNotFound)
	case errors.Is(err, ErrInsufficientBalance):
		return connect.NewError(connect.CodeFailedPrecondition, ErrInsufficientBalance)
	}
	return rpc.Error(ctx, logger, procedure, err)
}
