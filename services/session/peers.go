package session

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	"github.com/authms/authms/schemas/gen/authms/risk/v1/riskv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/platform"
	"github.com/authms/authms/services/internal/rpc"
)

// Peer services session calls.
const (
	peerIdentity = "identity"
	peerRisk     = "risk"
)

// peers holds session's clients of identity and risk. Every call carries
// session's service token (an interceptor adds it).
type peers struct {
	risk     riskv1connect.RiskServiceClient
	identity identityv1connect.IdentityServiceClient
}

func newPeers(p platform.Peers, keys *keyring, cfg Config) *peers {
	token := &serviceToken{keys: keys, ttl: cfg.ServiceTokenTTL}
	opts := []connect.ClientOption{connect.WithInterceptors(auth.Bearer(token))}
	riskHTTP, riskURL := p.Client(peerRisk)
	identityHTTP, identityURL := p.Client(peerIdentity)
	return &peers{
		risk:     riskv1connect.NewRiskServiceClient(riskHTTP, riskURL, opts...),
		identity: identityv1connect.NewIdentityServiceClient(identityHTTP, identityURL, opts...),
	}
}

// user is what session learns about a user from identity.
type user struct {
	id    string
	roles []string
}

// Errors of the identity calls.
var (
	// errBadCredentials is identity's one answer to an unknown email, a
	// wrong password and a disabled or deleted user.
	errBadCredentials = errors.New("invalid email or password")
	// errUserGone reports a user that identity no longer serves: deleted
	// or disabled.
	errUserGone = errors.New("user is disabled or deleted")
)

// activeUser returns a user identity reports active, with its current
// roles; errUserGone when it is disabled or deleted.
func (p *peers) activeUser(ctx context.Context, tenantID, userID string) (user, error) {
	res, err := p.identity.GetUser(ctx, connect.NewRequest(&identityv1.GetUserRequest{TenantId: tenantID, UserId: userID}))
	if connect.CodeOf(err) == connect.CodeNotFound {
		return user{}, errUserGone
	}
	if err != nil {
		return user{}, &rpc.PeerError{Peer: peerIdentity, Err: err}
	}
	u := res.Msg.GetUser()
	if u.GetStatus() != identityv1.UserStatus_USER_STATUS_ACTIVE {
		return user{}, errUserGone
	}
	return user{id: u.GetId(), roles: u.GetRoles()}, nil
}

// authenticate checks a tenant user's email and password with identity;
// errBadCredentials is its verdict on anything but a match.
func (p *peers) authenticate(ctx context.Context, tenantID, email, password string) (user, error) {
	res, err := p.identity.AuthenticateUser(ctx, connect.NewRequest(&identityv1.AuthenticateUserRequest{
		TenantId: tenantID, Email: email, Password: password,
	}))
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated, connect.CodeInvalidArgument:
		return user{}, errBadCredentials
	}
	if err != nil {
		return user{}, &rpc.PeerError{Peer: peerIdentity, Err: err}
	}
	return user{id: res.Msg.GetUserId(), roles: res.Msg.GetRoles()}, nil
}
