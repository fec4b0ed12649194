package services

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/authms/authms/events"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/obs"
	"github.com/authms/authms/services/internal/secrets"
)

// AuthConfig configures how the platform authenticates API calls (see
// package services/internal/auth).
type AuthConfig struct {
	// Issuer and Audience are the iss and aud every access token must carry
	// (default "authms").
	Issuer, Audience string
	// OperatorToken is the platform operator's secret
	// (AUTHMS_OPERATOR_TOKEN): the admin APIs, CreateTenant and ListTenants
	// accept it, nothing else does. Empty: no operator access at all.
	OperatorToken string
	// Keys verifies access tokens before the session service's JWKS is
	// asked: tests install a static key (servicestest). Nil: JWKS only.
	Keys auth.KeySource
	// ServiceKeys are service-token keys trusted besides those of the
	// services the platform runs: tests install their own to call as any
	// service (servicestest). Nil: none.
	ServiceKeys auth.ServiceKeys
	// Now is the clock tokens are checked against (tests that move the
	// session service's clock move this one too); nil: time.Now.
	Now func() time.Time
}

// operatorTokenKey names the development operator token in the secret
// files: <dataDir>/secrets/authms.operator-token.key.
const (
	operatorTokenService = "authms"
	operatorTokenName    = "operator-token"
)

// DevOperatorToken returns the development operator token, generated on
// first use under <dataDir>/secrets, and the file that holds it.
func DevOperatorToken(ctx context.Context, dataDir string) (token, file string, err error) {
	files := secrets.NewFiles(dataDir)
	k, err := files.Service(operatorTokenService).Key(ctx, operatorTokenName)
	if err != nil {
		return "", "", fmt.Errorf("operator token: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k), OperatorTokenFile(dataDir), nil
}

// OperatorTokenFile is the file `authms dev` keeps its operator token in;
// the CLI reads it when AUTHMS_OPERATOR_TOKEN is not set.
func OperatorTokenFile(dataDir string) string {
	return secrets.NewFiles(dataDir).Path(operatorTokenService, operatorTokenName)
}

// Policy returns the access policy declared for a Connect procedure
// ("/authms.wallet.v1.WalletService/GetWallet").
func (p *Platform) Policy(procedure string) (auth.Policy, bool) { return p.authn.Policy(procedure) }

// serviceSigners returns the service-token signer of every service in
// defs that calls peers (Definition.CallsPeers), from its own
// auth.ServiceKeyName secret, and their public keys for the verifier, with
// cfg.Auth.ServiceKeys. The platform trusts the service keys of the
// services it runs; a peer in another process (Config.PeerURLs) does not
// know them.
func serviceSigners(ctx context.Context, cfg Config, defs []Definition) (map[string]*auth.ServiceSigner, auth.ServiceKeys, error) {
	signers := map[string]*auth.ServiceSigner{}
	keys := maps.Clone(cfg.Auth.ServiceKeys)
	if keys == nil {
		keys = auth.ServiceKeys{}
	}
	for _, def := range defs {
		if !def.CallsPeers {
			continue
		}
		seed, err := cfg.Secrets.Service(def.Name).Key(ctx, auth.ServiceKeyName)
		if err != nil {
			return nil, nil, fmt.Errorf("service token key of %s: %w", def.Name, err)
		}
		s, err := auth.NewServiceSigner(auth.ServiceSignerConfig{
			Service: def.Name, Seed: seed, Issuer: cfg.Auth.Issuer, Audience: cfg.Auth.Audience, Now: cfg.Auth.Now,
		})
		if err != nil {
			return nil, nil, err
		}
		kid, key := s.Key()
		signers[def.Name], keys[kid] = s, key
	}
	return signers, keys, nil
}

// newAuth builds the platform's authenticator: access tokens verified with
// cfg.Auth.Keys and the session service's JWKS (reached as a peer), service
// tokens with the services' own keys, the revocation list fed by the
// SESSION stream, and the operator token.
func newAuth(cfg Config, peers *peers, metrics *obs.Metrics, serviceKeys auth.ServiceKeys) (*auth.Authenticator, *auth.Revocations, error) {
	client, baseURL := peers.Client("session")
	jwks, err := auth.NewJWKS(auth.JWKSConfig{Client: client, BaseURL: baseURL, Logger: cfg.Logger.With("component", "jwks"), Now: cfg.Auth.Now})
	if err != nil {
		return nil, nil, err
	}
	keys := auth.KeySource(jwks)
	if cfg.Auth.Keys != nil {
		keys = auth.Chain(cfg.Auth.Keys, jwks)
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{
		Keys: keys, ServiceKeys: serviceKeys, Issuer: cfg.Auth.Issuer, Audience: cfg.Auth.Audience, Now: cfg.Auth.Now,
	})
	if err != nil {
		return nil, nil, err
	}
	revocations, err := auth.NewRevocations(auth.RevocationsConfig{
		JS: cfg.JS, Stream: events.StreamName("session"), Logger: cfg.Logger, Registerer: metrics.Registerer(),
	})
	if err != nil {
		return nil, nil, err
	}
	authn, err := auth.New(auth.Config{
		Verifier: verifier, Revocations: revocations, OperatorToken: cfg.Auth.OperatorToken,
		Logger: cfg.Logger.With("component", "auth"),
	})
	if err != nil {
		return nil, nil, err
	}
	return authn, revocations, nil
}

// checkPolicies makes sure every procedure of the named Connect services
// has a declared policy, so none is reachable by accident.
func checkPolicies(authn *auth.Authenticator, apis []string) error {
	var errs []error
	for _, name := range apis {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			return fmt.Errorf("api %s: %w", name, err)
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			return fmt.Errorf("api %s: not a service", name)
		}
		for i := range sd.Methods().Len() {
			proc := "/" + name + "/" + string(sd.Methods().Get(i).Name())
			if _, ok := authn.Policy(proc); !ok {
				errs = append(errs, fmt.Errorf("procedure %s has no access policy (declare it in the service's Policies)", proc))
			}
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}
