package wallet

import (
	"context"
	"errors"
	"fmt"
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

// versionMismatchError reports an expected_version that is not the
// wallet's current version.
type versionMismatchError struct {
	expected, current int64
}

func (e *versionMismatchError) Error() string {
	return fmt.Sprintf("wallet is at version %d, not the expected %d", e.current, e.expected)
}

// fieldError is invalid input that the declarative rules cannot catch.
type fieldError struct {
	field, rule, msg string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// connectError maps every error the API returns to a Connect error: domain
// errors to their codes, anything else through rpc.Internal, which logs it
// and keeps internals out of the response.
func connectError(ctx context.Context, logger *slog.Logger, procedure string, err error) error {
	var (
		mismatch *versionMismatchError
		field    *fieldError
	)
	switch {
	case errors.Is(err, ErrWalletNotFound):
		return connect.NewError(connect.CodeNotFound, ErrWalletNotFound)
	case errors.Is(err, ErrInsufficientBalance):
		return connect.NewError(connect.CodeFailedPrecondition, ErrInsufficientBalance)
	case errors.As(err, &mismatch):
		return connect.NewError(connect.CodeAborted, fmt.Errorf("%w; reload it and retry", mismatch))
	case errors.As(err, &field):
		return rpc.FieldError(field.field, field.rule, field.msg)
	}
	return rpc.Internal(ctx, logger, procedure, err)
}
