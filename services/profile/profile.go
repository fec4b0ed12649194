package profile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	// The time zone database is compiled in so that which names UpdateProfile
	// accepts does not depend on the host's /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/pg"
	profilev1 "github.com/authms/authms/schemas/gen/authms/profile/v1"
	"github.com/authms/authms/services/internal/rpc"
	"github.com/authms/authms/services/profile/store"
)

// The profile aggregate and its events: profile.profile.<event>.
const (
	aggregateType = "profile"
	eventCreated  = "created"
	eventUpdated  = "updated"
)

// Attributes of a new user's default profile.
const (
	defaultLocale   = "en"
	defaultTimezone = "UTC"
)

// defaultProfile returns the profile a new user with email starts with.
func defaultProfile(tenantID, userID uuid.UUID, email string) store.Profile {
	local, _, _ := strings.Cut(email, "@")
	return store.Profile{
		UserID:      userID,
		TenantID:    tenantID,
		DisplayName: local,
		Locale:      defaultLocale,
		Timezone:    defaultTimezone,
	}
}

// change is a partial update: nil fields stay as they are.
type change struct {
	DisplayName *string
	Locale      *string
	Timezone    *string
}

// validate checks what the API's declarative rules cannot: the time zone
// must be a name in the IANA database.
func (c change) validate() error {
	if c.Timezone == nil {
		return nil
	}
	// LoadLocation maps "" to UTC and "Local" to the host's zone; neither is
	// a zone name a profile can carry.
	tz := *c.Timezone
	if _, err := time.LoadLocation(tz); err != nil || tz == "" || tz == "Local" {
		return &rpc.InvalidFieldError{Field: "timezone", Rule: "timezone.iana", Message: fmt.Sprintf("unknown time zone %q; use an IANA name such as Europe/Berlin", tz)}
	}
	return nil
}

// apply returns p with c applied and whether anything changed.
func (c change) apply(p store.Profile) (store.Profile, bool) {
	changed := false
	set := func(dst *string, src *string) {
		if src != nil && *src != *dst {
			*dst = *src
			changed = true
		}
	}
	set(&p.DisplayName, c.DisplayName)
	set(&p.Locale, c.Locale)
	set(&p.Timezone, c.Timezone)
	return p, changed
}

// createDefaultProfile creates the default profile of a new user and records
// profile.profile.created, in tx. A user who already has a profile keeps it:
// the call does nothing, so replaying identity's stream is harmless.
func (s *Service) createDefaultProfile(ctx context.Context, tx pgx.Tx, p store.Profile) error {
	id := p.UserID.String()
	if err := s.events.Lock(ctx, tx, id); err != nil {
		return err
	}
	version, err := s.events.Version(ctx, tx, id)
	if err != nil {
		return err
	}
	if version > 0 {
		return nil
	}
	evs, err := s.events.Append(ctx, tx, events.Aggregate{Type: aggregateType, ID: id, TenantID: p.TenantID.String()}, 0,
		events.Change{Name: eventCreated, Payload: &profilev1.ProfileCreated{
			UserId:      id,
			TenantId:    p.TenantID.String(),
			DisplayName: p.DisplayName,
			Locale:      p.Locale,
			Timezone:    p.Timezone,
		}})
	if err != nil {
		return err
	}
	last := evs[len(evs)-1]
	if err := store.New(tx).CreateProfile(ctx, store.CreateProfileParams{
		UserID:      p.UserID,
		TenantID:    p.TenantID,
		DisplayName: p.DisplayName,
		Locale:      p.Locale,
		Timezone:    p.Timezone,
		Version:     last.Version,
		CreateTime:  last.Time,
	}); err != nil {
		return fmt.Errorf("create profile of user %s: %w", id, err)
	}
	return nil
}

// getProfile returns the profile of a user of a tenant, or
// errProfileNotFound.
func (s *Service) getProfile(ctx context.Context, tenantID, userID uuid.UUID) (store.Profile, error) {
	p, err := store.New(s.deps.Pool).GetProfile(ctx, store.GetProfileParams{TenantID: tenantID, UserID: userID})
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Profile{}, errProfileNotFound
	}
	if err != nil {
		return store.Profile{}, fmt.Errorf("get profile of user %s: %w", userID, err)
	}
	return p, nil
}

// updateCommand changes a profile.
type updateCommand struct {
	TenantID uuid.UUID
	UserID   uuid.UUID
	Change   change
	// ExpectedVersion, when set, must equal the profile's current version.
	ExpectedVersion *int64
}

// updateProfile applies cmd and records profile.profile.updated with the
// whole profile. A change that changes nothing records no event and returns
// the profile as it is. It also returns the id of the profile's newest
// event.
func (s *Service) updateProfile(ctx context.Context, cmd updateCommand) (store.Profile, uuid.UUID, error) {
	if err := cmd.Change.validate(); err != nil {
		return store.Profile{}, uuid.Nil, err
	}
	id := cmd.UserID.String()
	var (
		out    store.Profile
		latest uuid.UUID
	)
	err := pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		if err := s.events.Lock(ctx, tx, id); err != nil {
			return err
		}
		q := store.New(tx)
		cur, err := q.GetProfile(ctx, store.GetProfileParams{TenantID: cmd.TenantID, UserID: cmd.UserID})
		if errors.Is(err, pgx.ErrNoRows) {
			return errProfileNotFound
		}
		if err != nil {
			return fmt.Errorf("load profile of user %s: %w", id, err)
		}
		version, err := s.events.Version(ctx, tx, id)
		if err != nil {
			return err
		}
		if cmd.ExpectedVersion != nil && *cmd.ExpectedVersion != version {
			return &rpc.VersionMismatchError{Aggregate: "profile", Expected: *cmd.ExpectedVersion, Current: version}
		}
		next, changed := cmd.Change.apply(cur)
		if !changed {
			out = cur
			latest, _, err = s.events.LatestEventID(ctx, tx, id)
			return err
		}
		evs, err := s.events.Append(ctx, tx, events.Aggregate{Type: aggregateType, ID: id, TenantID: cmd.TenantID.String()}, version,
			events.Change{Name: eventUpdated, Payload: &profilev1.ProfileUpdated{
				UserId:      id,
				TenantId:    cmd.TenantID.String(),
				DisplayName: next.DisplayName,
				Locale:      next.Locale,
				Timezone:    next.Timezone,
			}})
		if err != nil {
			return err
		}
		last := evs[len(evs)-1]
		latest = last.ID
		out, err = q.UpdateProfile(ctx, store.UpdateProfileParams{
			TenantID:    cmd.TenantID,
			UserID:      cmd.UserID,
			DisplayName: next.DisplayName,
			Locale:      next.Locale,
			Timezone:    next.Timezone,
			Version:     last.Version,
			UpdateTime:  last.Time,
		})
		if err != nil {
			return fmt.Errorf("update profile of user %s: %w", id, err)
		}
		return nil
	})
	return out, latest, err
}
