package session

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/pg"
	sessionv1 "github.com/authms/authms/schemas/gen/authms/session/v1"
	"github.com/authms/authms/services/internal/riskcheck"
	"github.com/authms/authms/services/internal/rpc"
	"github.com/authms/authms/services/session/store"
)

// Aggregate types and event names.
const (
	aggregateSession      = "session"
	aggregateRefreshToken = "refresh_token"
	eventCreated          = "created"
	eventRevoked          = "revoked"
	eventReuseDetected    = "reuse_detected"
)

// keyRefreshTokenDerivation names the HMAC key that derives a refresh
// token's successor from it.
const keyRefreshTokenDerivation = "refresh-token-derivation"

// refreshTokenSize is the length of a refresh token in bytes.
const refreshTokenSize = 32

// maxListedSessions bounds ListSessions.
const maxListedSessions = 100

// maxUserAgent bounds the user agent kept with a session.
const maxUserAgent = 512

// policy is a tenant's session policy.
type policy struct {
	accessTTL, refreshTTL, grace time.Duration
}

// policy returns the tenant's projected session policy, else the
// configured defaults.
func (s *Service) policy(ctx context.Context, q *store.Queries, tenantID uuid.UUID) (policy, error) {
	row, err := q.GetTenantSessionPolicy(ctx, tenantID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return policy{accessTTL: s.cfg.AccessTokenTTL, refreshTTL: s.cfg.RefreshTokenTTL, grace: s.cfg.RefreshReuseGrace}, nil
	case err != nil:
		return policy{}, fmt.Errorf("read session policy of tenant %s: %w", tenantID, err)
	}
	return policy{
		accessTTL:  time.Duration(row.AccessTokenTtlSeconds) * time.Second,
		refreshTTL: time.Duration(row.RefreshTokenTtlSeconds) * time.Second,
		grace:      time.Duration(row.RefreshReuseGraceMillis) * time.Millisecond,
	}, nil
}

// requireActiveTenant refuses a tenant that session knows to be suspended
// with refusal; a tenant it has not projected counts as active. read is
// the status query.
func requireActiveTenant(ctx context.Context, read func(context.Context, uuid.UUID) (bool, error), tenantID uuid.UUID, refusal error) error {
	suspended, err := read(ctx, tenantID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("read status of tenant %s: %w", tenantID, err)
	case suspended:
		return refusal
	}
	return nil
}

// client describes who is calling: its address, the network rate limits
// count it by (clientip.Network) and its user agent.
type client struct {
	ip, network, userAgent string
}

// login runs the login flow: risk's permission first, then identity's
// verdict on the credentials, reported back to risk, then a new session.
func (s *Service) login(ctx context.Context, req *sessionv1.LoginRequest, c client) (*sessionv1.LoginResponse, error) {
	tenantID, err := parseUUID("tenant_id", req.GetTenantId())
	if err != nil {
		return nil, err
	}
	var u user
	ok, err := riskcheck.Run(ctx, s.peers.risk, s.deps.Logger, riskcheck.Attempt{
		TenantID: tenantID.String(), Email: req.GetEmail(), IP: c.ip,
		Verify: func(ctx context.Context) (string, bool, error) {
			var err error
			u, err = s.peers.authenticate(ctx, tenantID.String(), req.GetEmail(), req.GetPassword())
			switch {
			case errors.Is(err, errBadCredentials):
				return "", false, nil
			case err != nil:
				return "", false, err
			}
			return u.id, true, nil
		},
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrInvalidCredentials
	}
	return s.openSession(ctx, tenantID, u, c)
}

// openSession creates a session with its first refresh token and records
// session.session.created, then mints the access token.
func (s *Service) openSession(ctx context.Context, tenantID uuid.UUID, u user, c client) (*sessionv1.LoginResponse, error) {
	userID, err := uuid.Parse(u.id)
	if err != nil {
		return nil, fmt.Errorf("identity returned user id %q: %w", u.id, err)
	}
	refresh, hash, err := newRefreshToken()
	if err != nil {
		return nil, err
	}
	id := uuid.Must(uuid.NewV7())
	var (
		row store.Session
		pol policy
	)
	err = pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		// Identity refuses a suspended tenant's logins too, once it has
		// projected the suspension; whichever service learns of it first
		// stops them. The tenant's status lock stays shared until the
		// session commits, so a suspension being projected waits for it,
		// and the revocation that follows finds it (cacheTenantStatus),
		// even when session has no status row for the tenant yet. Refresh
		// needs no such lock: it holds the session's row, which the
		// revocation locks too.
		if err := q.ShareTenantStatus(ctx, tenantID); err != nil {
			return fmt.Errorf("share status lock of tenant %s: %w", tenantID, err)
		}
		if err := requireActiveTenant(ctx, q.GetTenantSuspended, tenantID, ErrInvalidCredentials); err != nil {
			return err
		}
		pol, err = s.policy(ctx, q, tenantID)
		if err != nil {
			return err
		}
		now := s.now()
		row = store.Session{
			ID: id, TenantID: tenantID, UserID: userID, CreatedAt: now, RefreshedAt: now,
			ExpiresAt: now.Add(pol.refreshTTL), Ip: c.ip, UserAgent: c.userAgent,
		}
		if err := q.InsertSession(ctx, store.InsertSessionParams{
			ID: id, TenantID: tenantID, UserID: userID, CreatedAt: now, ExpiresAt: row.ExpiresAt, Ip: c.ip, UserAgent: c.userAgent,
		}); err != nil {
			return fmt.Errorf("insert session %s: %w", id, err)
		}
		if err := q.InsertRefreshToken(ctx, store.InsertRefreshTokenParams{
			TokenHash: hash, SessionID: id, TenantID: tenantID, Generation: 1, CreatedAt: now,
		}); err != nil {
			return fmt.Errorf("insert the first refresh token of session %s: %w", id, err)
		}
		_, err := s.events.Append(ctx, tx, events.Aggregate{Type: aggregateSession, ID: id.String(), TenantID: tenantID.String()}, 0,
			events.Change{Name: eventCreated, Payload: &sessionv1.SessionCreated{
				SessionId: id.String(), TenantId: tenantID.String(), UserId: userID.String(),
				CreateTime: timestamppb.New(now), ExpireTime: timestamppb.New(row.ExpiresAt),
			}})
		return err
	})
	if err != nil {
		return nil, err
	}
	tokens, err := s.tokens(ctx, row, u.roles, pol, refresh)
	if err != nil {
		return nil, err
	}
	return &sessionv1.LoginResponse{Tokens: tokens, Session: sessionProto(row)}, nil
}

// unknownRefreshToken counts a Refresh whose token names no session against
// the client's address and returns its answer: ErrInvalidRefreshToken, or
// a *RefreshLimitedError once the address has presented too many such
// tokens in the window.
func (s *Service) unknownRefreshToken(ctx context.Context, c client) error {
	if err := s.limitRefresh(ctx, s.cfg.RefreshLimitPerAddress, limitAddress, c.network); err != nil {
		return err
	}
	return ErrInvalidRefreshToken
}

// tokens mints the session's access token and pairs it with refresh.
func (s *Service) tokens(ctx context.Context, row store.Session, roles []string, pol policy, refresh string) (*sessionv1.Tokens, error) {
	access, exp, err := s.keys.mint(ctx, grant{
		subject: row.UserID.String(), tenantID: row.TenantID.String(), sessionID: row.ID.String(), roles: roles, ttl: pol.accessTTL,
	})
	if err != nil {
		return nil, err
	}
	return &sessionv1.Tokens{
		AccessToken: access, AccessTokenExpireTime: timestamppb.New(exp),
		RefreshToken: refresh, RefreshTokenExpireTime: timestamppb.New(row.ExpiresAt),
		TokenType: "Bearer",
	}, nil
}

// refresh exchanges a refresh token for its successor. A token that names
// no session (malformed, unknown, or of a session pruned since) counts
// against the client's address limit: guessing tokens is the attack it
// stops. A token that names one counts against its session's limit only,
// so the users behind one address (a NAT, an office proxy, a load balancer
// not among the trusted proxies) are not limited by their number, nor by a guesser
// among them. Everything else is decided under the session's row lock, so
// concurrent refreshes of one token are serialised: the first rotates, the
// others (within the grace window) get the same successor, and one
// presented later revokes the session.
func (s *Service) refresh(ctx context.Context, token string, c client) (*sessionv1.RefreshResponse, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != refreshTokenSize {
		return nil, s.unknownRefreshToken(ctx, c)
	}
	hash := hashToken(raw)
	q := store.New(s.deps.Pool)
	tok, err := q.GetRefreshToken(ctx, hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, s.unknownRefreshToken(ctx, c)
	}
	if err != nil {
		return nil, fmt.Errorf("read refresh token: %w", err)
	}
	if err := s.limitRefresh(ctx, s.cfg.RefreshLimitPerSession, limitSession, tok.SessionID.String()); err != nil {
		return nil, err
	}
	sess, err := q.GetSession(ctx, store.GetSessionParams{ID: tok.SessionID, TenantID: tok.TenantID})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrInvalidRefreshToken
	}
	if err != nil {
		return nil, fmt.Errorf("read session %s: %w", tok.SessionID, err)
	}
	if ended(sess, s.now()) {
		return nil, ErrSessionEnded
	}
	// Identity is asked before any lock is taken: a disabled or deleted
	// user refreshes no more, and the new token carries current roles.
	u, err := s.peers.activeUser(ctx, sess.TenantID.String(), sess.UserID.String())
	if errors.Is(err, errUserGone) {
		return nil, ErrSessionEnded
	}
	if err != nil {
		return nil, err
	}
	var (
		successor string
		pol       policy
		reused    bool
	)
	err = pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		sess, err = q.LockSession(ctx, store.LockSessionParams{ID: tok.SessionID, TenantID: tok.TenantID})
		if err != nil {
			return fmt.Errorf("lock session %s: %w", tok.SessionID, err)
		}
		now := s.now()
		if ended(sess, now) {
			return ErrSessionEnded
		}
		if err := requireActiveTenant(ctx, q.GetTenantSuspended, sess.TenantID, ErrSessionEnded); err != nil {
			return err
		}
		if tok, err = q.LockRefreshToken(ctx, hash); err != nil {
			return fmt.Errorf("lock refresh token of session %s: %w", sess.ID, err)
		}
		if pol, err = s.policy(ctx, q, sess.TenantID); err != nil {
			return err
		}
		next, nextHash, err := s.successor(ctx, raw, sess.ID, tok.Generation+1)
		if err != nil {
			return err
		}
		if !tok.UsedAt.Valid {
			if err := q.InsertRefreshToken(ctx, store.InsertRefreshTokenParams{
				TokenHash: nextHash, SessionID: sess.ID, TenantID: sess.TenantID, Generation: tok.Generation + 1, CreatedAt: now,
			}); err != nil {
				return fmt.Errorf("insert refresh token %d of session %s: %w", tok.Generation+1, sess.ID, err)
			}
			if _, err := q.UseRefreshToken(ctx, store.UseRefreshTokenParams{Now: now, SuccessorHash: nextHash, TokenHash: hash}); err != nil {
				return fmt.Errorf("use refresh token %d of session %s: %w", tok.Generation, sess.ID, err)
			}
			if err := q.TouchSession(ctx, store.TouchSessionParams{Now: now, ID: sess.ID, TenantID: sess.TenantID}); err != nil {
				return fmt.Errorf("touch session %s: %w", sess.ID, err)
			}
			sess.RefreshedAt, successor = now, next
			return nil
		}
		if now.Sub(tok.UsedAt.Time) <= pol.grace && hmac.Equal(nextHash, tok.SuccessorHash) {
			succ, err := q.GetRefreshToken(ctx, nextHash)
			if err != nil {
				return fmt.Errorf("read refresh token %d of session %s: %w", tok.Generation+1, sess.ID, err)
			}
			if !succ.UsedAt.Valid {
				successor = next // a concurrent refresh of the same token: same answer
				return nil
			}
		}
		reused = true
		return s.reuseDetected(ctx, tx, sess, tok, now)
	})
	if err != nil {
		return nil, err
	}
	if reused {
		return nil, ErrRefreshTokenReused
	}
	tokens, err := s.tokens(ctx, sess, u.roles, pol, successor)
	if err != nil {
		return nil, err
	}
	return &sessionv1.RefreshResponse{Tokens: tokens, Session: sessionProto(sess)}, nil
}

// reuseDetected revokes a session whose retired refresh token came back
// and records session.refresh_token.reuse_detected, then
// session.session.revoked.
func (s *Service) reuseDetected(ctx context.Context, tx pgx.Tx, sess store.Session, tok store.RefreshToken, now time.Time) error {
	s.deps.Logger.WarnContext(ctx, "refresh token reuse detected; session revoked", "tenant_id", sess.TenantID,
		"session_id", sess.ID, "user_id", sess.UserID, "generation", tok.Generation)
	version, err := s.events.Version(ctx, tx, sess.ID.String())
	if err != nil {
		return err
	}
	if _, err := s.events.Append(ctx, tx, events.Aggregate{Type: aggregateRefreshToken, ID: sess.ID.String(), TenantID: sess.TenantID.String()}, version,
		events.Change{Name: eventReuseDetected, Payload: &sessionv1.RefreshTokenReuseDetected{
			SessionId: sess.ID.String(), TenantId: sess.TenantID.String(), UserId: sess.UserID.String(),
			Generation: tok.Generation, UseTime: timestamppb.New(tok.UsedAt.Time), DetectTime: timestamppb.New(now),
		}}); err != nil {
		return err
	}
	return s.revokeLocked(ctx, tx, sess, sessionv1.RevokeReason_REVOKE_REASON_REFRESH_TOKEN_REUSE, now)
}

// revokeLocked revokes a live session whose row tx holds locked and
// records session.session.revoked.
func (s *Service) revokeLocked(ctx context.Context, tx pgx.Tx, sess store.Session, reason sessionv1.RevokeReason, now time.Time) error {
	if err := store.New(tx).RevokeSession(ctx, store.RevokeSessionParams{
		Now: now, Reason: reason.String(), ID: sess.ID, TenantID: sess.TenantID,
	}); err != nil {
		return fmt.Errorf("revoke session %s: %w", sess.ID, err)
	}
	version, err := s.events.Version(ctx, tx, sess.ID.String())
	if err != nil {
		return err
	}
	_, err = s.events.Append(ctx, tx, events.Aggregate{Type: aggregateSession, ID: sess.ID.String(), TenantID: sess.TenantID.String()}, version,
		events.Change{Name: eventRevoked, Payload: &sessionv1.SessionRevoked{
			SessionId: sess.ID.String(), TenantId: sess.TenantID.String(), UserId: sess.UserID.String(),
			Reason: reason, RevokeTime: timestamppb.New(now),
		}})
	return err
}

// revokeOne revokes a session of the tenant (of userID, when set). It
// reports whether the session was live.
func (s *Service) revokeOne(ctx context.Context, tenant, session string, userID *uuid.UUID, reason sessionv1.RevokeReason) (bool, error) {
	tenantID, err := parseUUID("tenant_id", tenant)
	if err != nil {
		return false, err
	}
	sessionID, err := parseUUID("session_id", session)
	if err != nil {
		return false, err
	}
	var wasActive bool
	err = pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		sess, err := store.New(tx).LockSession(ctx, store.LockSessionParams{ID: sessionID, TenantID: tenantID})
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && userID != nil && sess.UserID != *userID) {
			return ErrSessionNotFound
		}
		if err != nil {
			return fmt.Errorf("lock session %s: %w", sessionID, err)
		}
		now := s.now()
		if ended(sess, now) {
			return nil
		}
		wasActive = true
		return s.revokeLocked(ctx, tx, sess, reason, now)
	})
	return wasActive, err
}

// revokeAll revokes every live session of a user but except (uuid.Nil: none)
// in tx and returns how many it revoked.
func (s *Service) revokeAll(ctx context.Context, tx pgx.Tx, tenantID, userID, except uuid.UUID, reason sessionv1.RevokeReason) (int, error) {
	q := store.New(tx)
	rows, err := q.LockLiveSessionsOfUser(ctx, store.LockLiveSessionsOfUserParams{TenantID: tenantID, UserID: userID})
	if err != nil {
		return 0, fmt.Errorf("lock sessions of user %s: %w", userID, err)
	}
	now := s.now()
	n := 0
	for _, r := range rows {
		if r.ID == except || !r.ExpiresAt.After(now) {
			continue
		}
		sess := store.Session{ID: r.ID, TenantID: tenantID, UserID: userID}
		if err := s.revokeLocked(ctx, tx, sess, reason, now); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// revokeAllSessions is RevokeAllSessions.
func (s *Service) revokeAllSessions(ctx context.Context, req *sessionv1.RevokeAllSessionsRequest) (int, error) {
	tenantID, err := parseUUID("tenant_id", req.GetTenantId())
	if err != nil {
		return 0, err
	}
	userID, err := parseUUID("user_id", req.GetUserId())
	if err != nil {
		return 0, err
	}
	var except uuid.UUID
	if req.ExceptSessionId != nil {
		if except, err = parseUUID("except_session_id", req.GetExceptSessionId()); err != nil {
			return 0, err
		}
	}
	var n int
	err = pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		n, err = s.revokeAll(ctx, tx, tenantID, userID, except, sessionv1.RevokeReason_REVOKE_REASON_REVOKED)
		return err
	})
	return n, err
}

// listSessions returns a user's live sessions, newest first.
func (s *Service) listSessions(ctx context.Context, req *sessionv1.ListSessionsRequest) ([]*sessionv1.Session, error) {
	tenantID, err := parseUUID("tenant_id", req.GetTenantId())
	if err != nil {
		return nil, err
	}
	userID, err := parseUUID("user_id", req.GetUserId())
	if err != nil {
		return nil, err
	}
	rows, err := store.New(s.deps.Pool).ListLiveSessions(ctx, store.ListLiveSessionsParams{
		TenantID: tenantID, UserID: userID, Now: s.now(), MaxSessions: maxListedSessions,
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions of user %s: %w", userID, err)
	}
	out := make([]*sessionv1.Session, len(rows))
	for i, r := range rows {
		out[i] = sessionProto(r)
	}
	return out, nil
}

// ended reports whether a session is revoked or expired at now.
func ended(sess store.Session, now time.Time) bool {
	return sess.RevokedAt.Valid || !sess.ExpiresAt.After(now)
}

// newRefreshToken returns a random refresh token and its hash.
func newRefreshToken() (string, []byte, error) {
	raw := make([]byte, refreshTokenSize)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, fmt.Errorf("generate refresh token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), hashToken(raw), nil
}

// successor derives the refresh token that follows parent in a session's
// chain: HMAC-SHA256 under the refresh-token-derivation key of the
// session, the generation and the parent. Only the holder of the parent
// and the service's key can compute it, so the service returns the same
// successor to concurrent refreshes without ever storing a token.
func (s *Service) successor(ctx context.Context, parent []byte, sessionID uuid.UUID, generation int64) (string, []byte, error) {
	key, err := s.deps.Secrets.Key(ctx, keyRefreshTokenDerivation)
	if err != nil {
		return "", nil, fmt.Errorf("key %s: %w", keyRefreshTokenDerivation, err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("refresh-token|" + sessionID.String() + "|" + strconv.FormatInt(generation, 10) + "|"))
	mac.Write(parent)
	raw := mac.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(raw), hashToken(raw), nil
}

func hashToken(raw []byte) []byte {
	sum := sha256.Sum256(raw)
	return sum[:]
}

func sessionProto(r store.Session) *sessionv1.Session {
	return &sessionv1.Session{
		Id: r.ID.String(), TenantId: r.TenantID.String(), UserId: r.UserID.String(),
		CreateTime: timestamppb.New(r.CreatedAt), RefreshTime: timestamppb.New(r.RefreshedAt),
		ExpireTime: timestamppb.New(r.ExpiresAt), Ip: r.Ip, UserAgent: r.UserAgent,
	}
}

// parseUUID parses an id that the API schema declares a UUID.
func parseUUID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, &rpc.InvalidFieldError{Field: field, Rule: "string.uuid", Message: "must be a UUID"}
	}
	return id, nil
}
