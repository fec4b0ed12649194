package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
)

// Identity subjects the user_profiles projector consumes.
const (
	subjectUserCreated      = "identity.user.created"
	subjectUserEmailChanged = "identity.user.email_changed"
)

// userProfilesTable is the cache table; rows are keyed by user and guarded by
// the identity user's aggregate version.
var userProfilesTable = projections.Table{
	Name:    "user_profiles",
	Key:     []string{"user_id"},
	Columns: []string{"tenant_id", "email_ciphertext", "email_hash", "updated_at"},
}

// userProfiles is the projector that keeps user_profiles in step with
// identity's users (durable consumer "billing_user_profiles").
func (s *Service) userProfiles() projections.Projector {
	return projections.Projector{
		Service: Name,
		Name:    "user_profiles",
		Source:  "identity",
		Handlers: map[string]projections.Apply{
			subjectUserCreated:      s.cacheUser,
			subjectUserEmailChanged: s.cacheUser,
		},
		Rebuild: &projections.Rebuild{
			Tables:    []string{userProfilesTable.Name},
			NewFolder: func() projections.Folder { return newUserProfilesFolder(s) },
		},
	}
}

// userRow is one user's cache row before its email is sealed.
type userRow struct {
	tenantID, userID uuid.UUID
	email            string
	version          int64
	updatedAt        time.Time
}

// decodeUser reads the user an identity event describes.
func decodeUser(ev events.Event) (userRow, error) {
	var tenant, user, email string
	switch ev.Subject() {
	case subjectUserCreated:
		var m identityv1.UserCreated
		if err := ev.Unmarshal(&m); err != nil {
			return userRow{}, err
		}
		tenant, user, email = m.GetTenantId(), m.GetUserId(), m.GetEmail()
	case subjectUserEmailChanged:
		var m identityv1.UserEmailChanged
		if err := ev.Unmarshal(&m); err != nil {
			return userRow{}, err
		}
		tenant, user, email = m.GetTenantId(), m.GetUserId(), m.GetEmail()
	default:
		return userRow{}, events.Permanent(fmt.Errorf("event %s: unexpected subject %s", ev.ID, ev.Subject()))
	}
	tenantID, err := uuid.Parse(tenant)
	if err != nil {
		return userRow{}, events.Permanent(fmt.Errorf("event %s: bad tenant_id %q", ev.ID, tenant))
	}
	userID, err := uuid.Parse(user)
	if err != nil {
		return userRow{}, events.Permanent(fmt.Errorf("event %s: bad user_id %q", ev.ID, user))
	}
	if email == "" {
		return userRow{}, events.Permanent(fmt.Errorf("event %s: no email", ev.ID))
	}
	updatedAt := ev.Time
	if updatedAt.IsZero() {
		updatedAt = time.Now()
	}
	return userRow{tenantID: tenantID, userID: userID, email: email, version: ev.Version, updatedAt: updatedAt}, nil
}

// cacheUser writes the user's row as of ev's aggregate version, unless the
// row already reflects that version or a newer one. It handles every
// subject of the projector.
func (s *Service) cacheUser(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	row, err := decodeUser(ev)
	if err != nil {
		return err
	}
	seal, err := s.email.sealer(ctx)
	if err != nil {
		return err
	}
	sealed, err := seal.seal(row.tenantID, row.userID, row.email)
	if err != nil {
		return err
	}
	_, err = userProfilesTable.Upsert(ctx, tx, row.userID, row.tenantID, sealed, seal.blindIndex(row.tenantID, row.email), row.updatedAt, row.version)
	return err
}

// userProfilesFolder rebuilds user_profiles by replay: it keeps each user's
// newest row in memory and writes them all with COPY.
//
// The folded state holds no pointers (emails live in one byte arena, times
// are integers), so the garbage collector never scans it: for a million
// users that is most of the heap, and scanning it again and again cost a
// rebuild more CPU than folding did.
type userProfilesFolder struct {
	s      *Service
	index  map[uuid.UUID]int // user id -> rows
	rows   []foldedUser
	emails []byte
}

// foldedUser is a userRow without pointers.
type foldedUser struct {
	tenantID, userID uuid.UUID
	version          int64
	updatedAt        int64  // Unix microseconds: PostgreSQL's precision
	email            [2]int // emails[email[0]:email[1]]
}

func newUserProfilesFolder(s *Service) *userProfilesFolder {
	return &userProfilesFolder{s: s, index: map[uuid.UUID]int{}}
}

func (f *userProfilesFolder) Fold(ev events.Event) error {
	row, err := decodeUser(ev)
	if err != nil {
		return err
	}
	i, ok := f.index[row.userID]
	if ok && row.version <= f.rows[i].version {
		return nil
	}
	// A changed email is appended; the old bytes stay unused in the arena.
	start := len(f.emails)
	f.emails = append(f.emails, row.email...)
	folded := foldedUser{tenantID: row.tenantID, userID: row.userID, version: row.version,
		updatedAt: row.updatedAt.UnixMicro(), email: [2]int{start, len(f.emails)}}
	if ok {
		f.rows[i] = folded
		return nil
	}
	f.index[row.userID] = len(f.rows)
	f.rows = append(f.rows, folded)
	return nil
}

// Flush seals each row as COPY asks for it, so PostgreSQL ingests rows
// while the next ones are sealed.
func (f *userProfilesFolder) Flush(ctx context.Context, tx pgx.Tx) error {
	seal, err := f.s.email.sealer(ctx)
	if err != nil {
		return err
	}
	f.index = nil // not needed any more; let the collector have it
	values := make([]any, 6)
	src := pgx.CopyFromSlice(len(f.rows), func(i int) ([]any, error) {
		row := &f.rows[i]
		email := string(f.emails[row.email[0]:row.email[1]])
		sealed, err := seal.seal(row.tenantID, row.userID, email)
		if err != nil {
			return nil, err
		}
		// pgtype.UUID encodes far faster than uuid.UUID in COPY. COPY
		// encodes a row before it asks for the next, so values is reused.
		values[0] = pgtype.UUID{Bytes: row.userID, Valid: true}
		values[1] = pgtype.UUID{Bytes: row.tenantID, Valid: true}
		values[2] = sealed
		values[3] = seal.blindIndex(row.tenantID, email)
		values[4] = row.version
		values[5] = time.UnixMicro(row.updatedAt)
		return values, nil
	})
	_, err = tx.CopyFrom(ctx, pgx.Identifier{userProfilesTable.Name},
		[]string{"user_id", "tenant_id", "email_ciphertext", "email_hash", "version", "updated_at"}, src)
	f.rows, f.emails = nil, nil
	if err != nil {
		return fmt.Errorf("copy user_profiles: %w", err)
	}
	return nil
}
