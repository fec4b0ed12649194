package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	riskv1 "github.com/authms/authms/schemas/gen/authms/risk/v1"
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

// DeniedError is risk's refusal of a login attempt. It never says whether
// the account exists: risk locks and throttles emails whether or not they
// name a user.
type DeniedError struct {
	Reason     riskv1.DenyReason
	RetryAfter time.Duration
}

func (e *DeniedError) Error() string {
	if e.Reason == riskv1.DenyReason_DENY_REASON_ACCOUNT_LOCKED {
		return "too many failed logins: the account is locked for now; retry later"
	}
	return "too many login attempts; retry later"
}

// peerError is a failed call to identity or risk.
type peerError struct {
	peer string
	err  error
}

func (e *peerError) Error() string { return fmt.Sprintf("%s: %v", e.peer, e.err) }
func (e *peerError) Unwrap() error { return e.err }

// connectError maps every error the API returns to a Connect error: domain
// errors to their codes, anything else through rpc.Error, which logs it
// and keeps internals out of the response.
func connectError(ctx context.Context, logger *slog.Logger, procedure string, err error) error {
	var (
		denied  *DeniedError
		limited *RefreshLimitedError
		peer    *peerError
	)
	switch {
	case errors.Is(err, ErrInvalidCredentials), errors.Is(err, ErrInvalidRefreshToken),
		errors.Is(err, ErrSessionEnded), errors.Is(err, ErrRefreshTokenReused):
		return connect.NewError(connect.CodeUnauthenticated, err)
	case errors.Is(err, ErrSessionNotFound):
		return connect.NewError(connect.CodeNotFound, err)
	case errors.As(err, &denied):
		code := connect.CodeResourceExhausted
		if denied.Reason == riskv1.DenyReason_DENY_REASON_ACCOUNT_LOCKED {
			code = connect.CodePermissionDenied
		}
		return retryError(code, denied, denied.RetryAfter)
	case errors.As(err, &limited):
		return retryError(connect.CodeResourceExhausted, limited, limited.RetryAfter)
	case errors.As(err, &peer):
		// A peer's message is not ours to pass on.
		code := connect.CodeOf(peer.err)
		if code == connect.CodeUnavailable || code == connect.CodeDeadlineExceeded || code == connect.CodeCanceled {
			logger.WarnContext(ctx, "a peer service is unavailable", "procedure", procedure, "peer", peer.peer, "err", peer.err)
			return connect.NewError(connect.CodeUnavailable, fmt.Errorf("the %s service is unavailable; retry later", peer.peer))
		}
		logger.ErrorContext(ctx, "a peer service failed", "procedure", procedure, "peer", peer.peer, "err", peer.err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	return rpc.Error(ctx, logger, procedure, err)
}

// retryError is a refusal that lifts by itself: RESOURCE_EXHAUSTED for a
// busy account, a throttled address or a refresh limit, PERMISSION_DENIED
// for a locked account, with a google.rpc.RetryInfo detail and a
// Retry-After header in whole seconds.
func retryError(code connect.Code, err error, retryAfter time.Duration) *connect.Error {
	secs := max(int64((retryAfter+time.Second-1)/time.Second), 1)
	ce := connect.NewError(code, errors.New(err.Error()))
	if detail, err := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(secs) * time.Second)}); err == nil {
		ce.AddDetail(detail)
	}
	ce.Meta().Set("Retry-After", strconv.FormatInt(secs, 10))
	return ce
}
