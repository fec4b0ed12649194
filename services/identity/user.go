package identity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/pg"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/services/identity/store"
	"github.com/authms/authms/services/internal/email"
	"github.com/authms/authms/services/internal/rpc"
)

// aggregateUser is the user aggregate's type: its events are published as
// identity.user.<event>.
const aggregateUser = "user"

// Event names of the user aggregate.
const (
	eventUserCreated         = "created"
	eventUserEmailChanged    = "email_changed"
	eventUserPasswordChanged = "password_changed"
	eventUserDisabled        = "disabled"
	eventUserEnabled         = "enabled"
	eventUserDeleted         = "deleted"
)

// The registration aggregate records registrations that created no user
// (see Service.registrationRepeated): identity.registration.<event>.
const (
	aggregateRegistration         = "registration"
	eventRegistrationAddressTaken = "address_taken"
)

// User statuses as stored in users.status.
const (
	statusActive   = "active"
	statusDisabled = "disabled"
)

// uniqueEmail is the constraint that keeps one email per tenant.
const uniqueEmail = "users_tenant_email_key"

// user is the user aggregate's state, folded from its events.
type user struct {
	id       string
	tenantID string
	email    string
	// status is statusActive or statusDisabled.
	status        string
	emailVerified bool
	roles         []string // sorted names
	deleted       bool
	version       int64 // 0: the user was never created
	createdAt     time.Time
	updatedAt     time.Time
}

// apply folds one event into u.
func (u *user) apply(ev events.Event) error {
	switch ev.Name {
	case eventUserCreated:
		var m identityv1.UserCreated
		if err := ev.Unmarshal(&m); err != nil {
			return err
		}
		u.roles = []string{}
		u.id, u.tenantID, u.email = m.GetUserId(), m.GetTenantId(), m.GetEmail()
		u.status, u.emailVerified = statusActive, m.GetEmailVerified()
		u.createdAt = m.GetCreateTime().AsTime()
	case eventUserEmailChanged:
		var m identityv1.UserEmailChanged
		if err := ev.Unmarshal(&m); err != nil {
			return err
		}
		u.email, u.emailVerified = m.GetEmail(), false
	case eventUserDisabled:
		u.status = statusDisabled
	case eventUserEnabled:
		u.status = statusActive
	case eventUserDeleted:
		u.deleted = true
	case eventEmailVerified:
		u.emailVerified = true
	case eventUserRolesChanged:
		var m identityv1.UserRolesChanged
		if err := ev.Unmarshal(&m); err != nil {
			return err
		}
		u.roles = m.GetRoles()
	case eventUserPasswordChanged, eventEmailVerificationRequested, eventPasswordResetRequested:
		// Hashes and tokens are not in events: the state does not change.
	default:
		return fmt.Errorf("user %s: unknown event %s", ev.AggregateID, ev.Type())
	}
	if ev.Version != u.version+1 {
		return fmt.Errorf("user %s: event %s has version %d after %d", ev.AggregateID, ev.ID, ev.Version, u.version)
	}
	u.version = ev.Version
	u.updatedAt = ev.Time
	return nil
}

// exists reports whether the user was created (and, later, not deleted).
func (u user) exists() bool { return u.version > 0 && !u.deleted }

// userFromEvents rehydrates a user. No events give the zero user, which
// does not exist, and so do the events of another aggregate: a user id
// comes from the caller, and the id RegisterUser answers a taken address
// with is a registration aggregate's (see Service.registrationRepeated),
// so a command on it must be told what a command on an unknown user is
// told, not fail as if the store were broken. An aggregate whose events
// are of two types is: that is an error.
func userFromEvents(evs []events.Event) (user, error) {
	var u user
	if len(evs) > 0 && evs[0].AggregateType != aggregateUser {
		for _, ev := range evs {
			if ev.AggregateType != evs[0].AggregateType {
				return user{}, fmt.Errorf("aggregate %s has events of a %s and of a %s", ev.AggregateID, evs[0].AggregateType, ev.AggregateType)
			}
		}
		return user{}, nil
	}
	for _, ev := range evs {
		if ev.AggregateType != aggregateUser {
			return user{}, fmt.Errorf("aggregate %s has events of a user and of a %s", ev.AggregateID, ev.AggregateType)
		}
		if err := u.apply(ev); err != nil {
			return user{}, err
		}
	}
	return u, nil
}

// parseEmail validates an address (see email.Parse) and returns its
// display form, which is stored and published, and its canonical form,
// which decides uniqueness in a tenant and matches logins. A refused
// address is an invalid email field.
func parseEmail(s string) (email.Address, error) {
	addr, err := email.Parse(s)
	var e *email.Error
	if errors.As(err, &e) {
		return email.Address{}, &rpc.InvalidFieldError{Field: "email", Rule: e.Rule, Message: e.Message}
	}
	return addr, err
}

// registration is a validated RegisterUser or ImportUser command.
type registration struct {
	userID        uuid.UUID
	tenantID      uuid.UUID
	email         string // as stored
	emailVerified bool
	now           time.Time
}

// register decides the events of a new user.
func register(r registration) []events.Change {
	return []events.Change{{Name: eventUserCreated, Payload: &identityv1.UserCreated{
		UserId:        r.userID.String(),
		TenantId:      r.tenantID.String(),
		Email:         r.email,
		CreateTime:    timestamppb.New(r.now),
		EmailVerified: r.emailVerified,
	}}}
}

// emailChange is a validated ChangeEmail command.
type emailChange struct {
	tenantID        string
	email           string // as stored
	expectedVersion *int64
}

// changeEmail decides the events of an email change. A user of another
// tenant does not exist for the command. The version is checked before
// anything else, so a conditional change against a stale version is Aborted
// even when it would be a no-op; the same email is a no-op (no events).
func (u user) changeEmail(c emailChange) ([]events.Change, error) {
	if !u.exists() || u.tenantID != c.tenantID {
		return nil, ErrUserNotFound
	}
	if c.expectedVersion != nil && *c.expectedVersion != u.version {
		return nil, &rpc.VersionMismatchError{Aggregate: "user", Expected: *c.expectedVersion, Current: u.version}
	}
	if c.email == u.email {
		return nil, nil
	}
	return []events.Change{{Name: eventUserEmailChanged, Payload: &identityv1.UserEmailChanged{
		UserId:        u.id,
		TenantId:      u.tenantID,
		Email:         c.email,
		PreviousEmail: u.email,
	}}}, nil
}

// registerUser creates a user, its credential and its created event in one
// transaction. It returns the user and the id of the event.
func (s *Service) registerUser(ctx context.Context, req *identityv1.RegisterUserRequest) (*identityv1.User, uuid.UUID, error) {
	tenantID, err := uuid.Parse(req.GetTenantId())
	if err != nil {
		return nil, uuid.Nil, &rpc.InvalidFieldError{Field: "tenant_id", Rule: "string.uuid", Message: "must be a UUID"}
	}
	addr, err := parseEmail(req.GetEmail())
	if err != nil {
		return nil, uuid.Nil, err
	}
	if err := s.checkNewPassword(ctx, newPassword{
		field: "password", password: req.GetPassword(), tenantID: tenantID, canonicalEmail: addr.Canonical,
	}); err != nil {
		return nil, uuid.Nil, err
	}
	// Hash before the transaction: it takes tens of milliseconds and needs
	// no lock.
	hash, err := s.hasher.hash(ctx, req.GetPassword())
	if err != nil {
		return nil, uuid.Nil, err
	}
	u, event, err := s.createUser(ctx, tenantID, addr, hash, false)
	if errors.Is(err, ErrEmailTaken) {
		u, event, err = s.registrationRepeated(ctx, tenantID, addr, hash)
	}
	if err == nil {
		s.deps.Logger.InfoContext(ctx, "user registered", "tenant_id", tenantID, "user_id", u.GetId())
	}
	return u, event, err
}

// registrationRepeated answers the registration of an address that already
// has an account in the tenant as a new registration is answered, so that
// registering says nothing of which addresses have accounts: with a user
// that is never stored (a fresh id, the address, now) and the position of
// an identity.registration.address_taken event, which tells the account's
// owner (through the notification service) that someone tried to sign up
// with their address. The password was hashed all the same, so the answer
// takes as long. An admin's ImportUser reports the taken address as
// AlreadyExists.
//
// The event is the registration's own (aggregate "registration", the
// answer's id), not the account's: an anonymous caller must not be able to
// move the account's version, take its lock or grow its history.
func (s *Service) registrationRepeated(ctx context.Context, tenantID uuid.UUID, addr email.Address, hash string) (*identityv1.User, uuid.UUID, error) {
	owner, err := store.New(s.deps.Pool).GetLogin(ctx, store.GetLoginParams{TenantID: tenantID, EmailCanonical: addr.Canonical})
	if errors.Is(err, pgx.ErrNoRows) { // deleted since the insert failed: the address is free
		return s.createUser(ctx, tenantID, addr, hash, false)
	}
	if err != nil {
		return nil, uuid.Nil, fmt.Errorf("get user of tenant %s by email: %w", tenantID, err)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	id := uuid.Must(uuid.NewV7())
	agg := events.Aggregate{Type: aggregateRegistration, ID: id.String(), TenantID: tenantID.String()}
	var recorded []events.Event
	err = pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		recorded, err = s.events.Append(ctx, tx, agg, 0, events.Change{Name: eventRegistrationAddressTaken, Payload: &identityv1.RegistrationAddressTaken{
			RegistrationId: id.String(), TenantId: tenantID.String(), UserId: owner.ID.String(), Email: owner.Email, AttemptTime: timestamppb.New(now),
		}})
		return err
	})
	if err != nil {
		return nil, uuid.Nil, err
	}
	s.deps.Logger.InfoContext(ctx, "registration of an address that has an account; answered as new, owner to be told",
		"tenant_id", tenantID, "user_id", owner.ID, "registration_id", id)
	return userProto(newUserRow(id, tenantID, addr, false, now), nil), recorded[0].ID, nil
}

// newUserRow is the users row of a user created now.
func newUserRow(id, tenantID uuid.UUID, addr email.Address, verified bool, now time.Time) store.User {
	return store.User{
		ID:             id,
		TenantID:       tenantID,
		Email:          addr.Display,
		EmailCanonical: addr.Canonical,
		Version:        1,
		CreatedAt:      now,
		UpdatedAt:      now,
		Status:         statusActive,
		EmailVerified:  verified,
	}
}

// createUser creates a user with the password hash, its credential and its
// created event in one transaction. It returns the user and the id of the
// event.
func (s *Service) createUser(ctx context.Context, tenantID uuid.UUID, addr email.Address, hash string, verified bool) (*identityv1.User, uuid.UUID, error) {
	r := registration{
		userID:        uuid.Must(uuid.NewV7()),
		tenantID:      tenantID,
		email:         addr.Display,
		emailVerified: verified,
		now:           s.now().UTC().Truncate(time.Microsecond),
	}
	row := newUserRow(r.userID, tenantID, addr, verified, r.now)
	agg := events.Aggregate{Type: aggregateUser, ID: r.userID.String(), TenantID: tenantID.String()}
	var created []events.Event
	err := pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		if err := s.events.Lock(ctx, tx, agg.ID); err != nil {
			return err
		}
		version, err := s.events.Version(ctx, tx, agg.ID)
		if err != nil {
			return err
		}
		if version != 0 {
			return fmt.Errorf("new user id %s already has %d events", agg.ID, version)
		}
		q := store.New(tx)
		if err := q.InsertUser(ctx, store.InsertUserParams(row)); err != nil {
			if pg.IsUniqueViolation(err, uniqueEmail) {
				return ErrEmailTaken
			}
			return fmt.Errorf("insert user %s: %w", agg.ID, err)
		}
		if err := q.InsertCredential(ctx, store.InsertCredentialParams{
			UserID: r.userID, TenantID: tenantID, PasswordHash: hash, UpdatedAt: r.now,
		}); err != nil {
			return fmt.Errorf("insert credential of user %s: %w", agg.ID, err)
		}
		if err := recordPassword(ctx, q, tenantID, r.userID, hash, r.now); err != nil {
			return err
		}
		created, err = s.events.Append(ctx, tx, agg, version, register(r)...)
		return err
	})
	if err != nil {
		return nil, uuid.Nil, err
	}
	return userProto(row, nil), created[len(created)-1].ID, nil
}

// getUser returns a user of a tenant.
func (s *Service) getUser(ctx context.Context, tenant, id string) (*identityv1.User, error) {
	tenantID, userID, err := parseIDs(tenant, id)
	if err != nil {
		return nil, err
	}
	row, err := store.New(s.deps.Pool).GetUser(ctx, store.GetUserParams{TenantID: tenantID, ID: userID})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrUserNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get user %s: %w", userID, err)
	}
	roles, err := store.New(s.deps.Pool).ListUserRoles(ctx, store.ListUserRolesParams{TenantID: tenantID, UserID: userID})
	if err != nil {
		return nil, fmt.Errorf("roles of user %s: %w", userID, err)
	}
	return userProto(row, roles), nil
}

// changeEmail replaces a user's email through updateUser; the API has
// checked the current password first (reauthenticate), counted by risk.
// The new address is unverified. It returns the user and the id of its
// newest event (the new one, unless the email did not change).
func (s *Service) changeEmail(ctx context.Context, req *identityv1.ChangeEmailRequest) (*identityv1.User, uuid.UUID, error) {
	tenantID, userID, err := parseIDs(req.GetTenantId(), req.GetUserId())
	if err != nil {
		return nil, uuid.Nil, err
	}
	addr, err := parseEmail(req.GetEmail())
	if err != nil {
		return nil, uuid.Nil, err
	}
	cmd := emailChange{tenantID: tenantID.String(), email: addr.Display, expectedVersion: req.ExpectedVersion}
	latest, err := s.updateUser(ctx, userUpdate{
		tenantID: tenantID, userID: userID,
		decide: func(u user) ([]events.Change, error) { return u.changeEmail(cmd) },
		write: func(q *store.Queries, u user, version int64, now time.Time) error {
			n, err := q.UpdateUserEmail(ctx, store.UpdateUserEmailParams{
				TenantID:       tenantID,
				ID:             userID,
				Email:          addr.Display,
				EmailCanonical: addr.Canonical,
				Version:        version,
				UpdatedAt:      now,
			})
			if pg.IsUniqueViolation(err, uniqueEmail) {
				return ErrEmailTaken
			}
			if err != nil {
				return fmt.Errorf("update email of user %s: %w", userID, err)
			}
			if n != 1 {
				return fmt.Errorf("user %s has events but no users row", userID)
			}
			// Links sent to the old address must not verify the new one, nor
			// reset the password of an account that moved away from it.
			for _, kind := range []string{tokenEmailVerification, tokenPasswordReset} {
				if err := q.DeleteUserTokens(ctx, store.DeleteUserTokensParams{TenantID: tenantID, UserID: userID, Kind: kind}); err != nil {
					return fmt.Errorf("delete %s tokens of user %s: %w", kind, userID, err)
				}
			}
			return nil
		},
	})
	if err != nil {
		return nil, uuid.Nil, err
	}
	u, err := s.getUser(ctx, tenantID.String(), userID.String())
	return u, latest, err
}

// parseIDs parses a tenant and a user id that the API schema declares UUIDs.
func parseIDs(tenant, user string) (tenantID, userID uuid.UUID, err error) {
	if tenantID, err = uuid.Parse(tenant); err != nil {
		return uuid.Nil, uuid.Nil, &rpc.InvalidFieldError{Field: "tenant_id", Rule: "string.uuid", Message: "must be a UUID"}
	}
	if userID, err = uuid.Parse(user); err != nil {
		return uuid.Nil, uuid.Nil, &rpc.InvalidFieldError{Field: "user_id", Rule: "string.uuid", Message: "must be a UUID"}
	}
	return tenantID, userID, nil
}

// userProto is the API view of a users row and the user's roles.
func userProto(r store.User, roles []string) *identityv1.User {
	return &identityv1.User{
		Id:            r.ID.String(),
		TenantId:      r.TenantID.String(),
		Email:         r.Email,
		Version:       r.Version,
		CreateTime:    timestamppb.New(r.CreatedAt),
		UpdateTime:    timestamppb.New(r.UpdatedAt),
		Status:        statusProto(r.Status),
		Roles:         roles,
		EmailVerified: r.EmailVerified,
	}
}

func statusProto(s string) identityv1.UserStatus {
	if s == statusDisabled {
		return identityv1.UserStatus_USER_STATUS_DISABLED
	}
	return identityv1.UserStatus_USER_STATUS_ACTIVE
}
