package profile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/authms/authms/services/internal/rpc"
)

// errProfileNotFound reports a user without a profile in the tenant asked
// about (the user may not exist, or belong to another tenant).
var errProfileNotFound = errors.New("profile not found")

// versionMismatchError reports an expected_version that is not the
// profile's current version.
type versionMismatchError struct {
	expected, current int64
}

func (e *versionMismatchError) Error() string {
	return fmt.Sprintf("profile is at version %d, not the expected %d", e.current, e.expected)
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
	case errors.Is(err, errProfileNotFound):
		return connect.NewError(connect.CodeNotFound, errProfileNotFound)
	case errors.As(err, &mismatch):
		return connect.NewError(connect.CodeAborted, fmt.Errorf("%w; reload it and retry", mismatch))
	case errors.As(err, &field):
		return rpc.FieldError(field.field, field.rule, field.msg)
	}
	return rpc.Internal(ctx, logger, procedure, err)
}
