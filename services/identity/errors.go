package identity

import (
	"context"
	"errors"
	"fmt"
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

// versionMismatchError reports an expected_version that is not the user's
// current version.
type versionMismatchError struct {
	expected, current int64
}

func (e *versionMismatchError) Error() string {
	return fmt.Sprintf("user is at version %d, not the expected %d", e.current, e.expected)
}

// fieldError is invalid input that the declarative rules cannot catch.
type fieldError struct {
	field, rule, msg string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// connectError maps every error the API returns to a Connect error: domain
// errors to their codes, anything else through rpc.Internal, which logs it
// and keeps internals (SQL, hashes) out of the response.
func connectError(ctx context.Context, logger *slog.Logger, procedure string, err error) error {
	var (
		mismatch *versionMismatchError
		field    *fieldError
	)
	switch {
	case errors.Is(err, ErrUserNotFound):
		return connect.NewError(connect.CodeNotFound, ErrUserNotFound)
	case errors.Is(err, ErrEmailTaken):
		return connect.NewError(connect.CodeAlreadyExists, ErrEmailTaken)
	case errors.As(err, &mismatch):
		return connect.NewError(connect.CodeAborted, fmt.Errorf("%w; reload it and retry", mismatch))
	case errors.As(err, &field):
		return rpc.FieldError(field.field, field.rule, field.msg)
	}
	return rpc.Internal(ctx, logger, procedure, err)
}
