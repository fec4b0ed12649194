package session

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/authms/authms/services/internal/rpc"
)

// Domain errors of the session service. [connectError] turns them into
// Connect codes.
var (
	// ErrInvalidCredentials is the one answer to an unknown email, a wrong
	// password and a disabled or deleted user.
	ErrInvalidCredentials = errors.New("invalid email or password")
	// ErrInvalidRefreshToken reports a refresh token session never issued
	// (or whose session was pruned, long after it ended).
	ErrInvalidRefreshToken = errors.New("invalid refresh token")
	// ErrSessionEnded reports a refresh of a session that expired or was
	// revoked, or whose user is disabled or deleted.
	ErrSessionEnded = errors.New("the session has ended; log in again")
	// ErrRefreshTokenReused reports a refresh token presented after it was
	// exchanged: the session is revoked.
	ErrRefreshTokenReused = errors.New("refresh token already used; the session is revoked, log in again")
	// ErrSessionNotFound reports a session id unknown in the tenant (or of
	// another user).
	ErrSessionNotFound = errors.New("session not found")
)

// connectError maps every error the API returns to a Connect error: domain
// errors to their codes, anything else through rpc.Error, which logs it
// and keeps internals out of the response (risk's refusals and the peers'
// failures are rpc.DeniedError and rpc.PeerError).
func connectError(ctx context.Context, logger *slog.Logger, procedure string, err error) error {
	var limited *RefreshLimitedError
	switch {
	case errors.As(err, &limited):
		return rpc.RetryLater(connect.CodeResourceExhausted, limited.Error(), limited.RetryAfter)
	case errors.Is(err, ErrInvalidCredentials), errors.Is(err, ErrInvalidRefreshToken),
		errors.Is(err, ErrSessionEnded), errors.Is(err, ErrRefreshTokenReused):
		return connect.NewError(connect.CodeUnauthenticated, err)
	case errors.Is(err, ErrSessionNotFound):
		return connect.NewError(connect.CodeNotFound, err)
	}
	return rpc.Error(ctx, logger, procedure, err)
}
