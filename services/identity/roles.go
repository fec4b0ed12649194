package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/pg"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/services/identity/store"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/rpc"
)

// aggregateRole is the role aggregate's type: its events are published as
// identity.role.<event>.
const aggregateRole = "role"

// Event names of the role aggregate, and the user's roles event.
const (
	eventRoleCreated            = "created"
	eventRolePermissionsGranted = "permissions_granted"
	eventRolePermissionsRevoked = "permissions_revoked"
	eventUserRolesChanged       = "roles_changed"
)

// Role names with a meaning of their own.
const (
	// RoleAdmin is the built-in role of every tenant: it holds "*".
	RoleAdmin = "admin"
	// roleService is reserved for internal callers' tokens.
	roleService = "service"
)

// permissionAll grants everything.
const permissionAll = "*"

// uniqueRoleName keeps one role of a name per tenant.
const uniqueRoleName = "roles_tenant_name_key"

// role is the role aggregate's state, folded from its events.
type role struct {
	id, tenantID, name string
	permissions        []string // sorted, distinct
	version            int64
}

func (r *role) apply(ev events.Event) error {
	switch ev.Name {
	case eventRoleCreated:
		var m identityv1.RoleCreated
		if err := ev.Unmarshal(&m); err != nil {
			return err
		}
		r.id, r.tenantID, r.name, r.permissions = m.GetRoleId(), m.GetTenantId(), m.GetName(), m.GetPermissions()
	case eventRolePermissionsGranted:
		var m identityv1.RolePermissionsGranted
		if err := ev.Unmarshal(&m); err != nil {
			return err
		}
		r.permissions = m.GetRolePermissions()
	case eventRolePermissionsRevoked:
		var m identityv1.RolePermissionsRevoked
		if err := ev.Unmarshal(&m); err != nil {
			return err
		}
		r.permissions = m.GetRolePermissions()
	default:
		return fmt.Errorf("role %s: unknown event %s", ev.AggregateID, ev.Type())
	}
	if ev.Version != r.version+1 {
		return fmt.Errorf("role %s: event %s has version %d after %d", ev.AggregateID, ev.ID, ev.Version, r.version)
	}
	r.version = ev.Version
	return nil
}

// sortedSet returns the distinct values of in, sorted.
func sortedSet(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// grant decides the event adding perms; perms held already are ignored,
// and nothing new is a no-op.
func (r role) grant(perms []string) []events.Change {
	var added []string
	for _, p := range sortedSet(perms) {
		if _, held := slices.BinarySearch(r.permissions, p); !held {
			added = append(added, p)
		}
	}
	if len(added) == 0 {
		return nil
	}
	return []events.Change{{Name: eventRolePermissionsGranted, Payload: &identityv1.RolePermissionsGranted{
		RoleId: r.id, TenantId: r.tenantID, Name: r.name, Permissions: added,
		RolePermissions: sortedSet(append(slices.Clone(r.permissions), added...)),
	}}}
}

// revoke decides the event removing perms; perms not held are ignored.
func (r role) revoke(perms []string) []events.Change {
	drop := sortedSet(perms)
	var removed, kept []string
	for _, p := range r.permissions {
		if _, found := slices.BinarySearch(drop, p); found {
			removed = append(removed, p)
		} else {
			kept = append(kept, p)
		}
	}
	if len(removed) == 0 {
		return nil
	}
	return []events.Change{{Name: eventRolePermissionsRevoked, Payload: &identityv1.RolePermissionsRevoked{
		RoleId: r.id, TenantId: r.tenantID, Name: r.name, Permissions: removed, RolePermissions: kept,
	}}}
}

// checkRoleName refuses the reserved names for a new role.
func checkRoleName(name string) error {
	switch name {
	case RoleAdmin:
		return ErrRoleExists
	case roleService:
		return &rpc.InvalidFieldError{Field: "name", Rule: "role.reserved", Message: "is reserved for internal callers"}
	}
	return nil
}

// createRole creates a role of a tenant.
func (s *Service) createRole(ctx context.Context, req *identityv1.CreateRoleRequest) (*identityv1.Role, uuid.UUID, error) {
	tenantID, err := uuid.Parse(req.GetTenantId())
	if err != nil {
		return nil, uuid.Nil, invalidTenant
	}
	if err := checkRoleName(req.GetName()); err != nil {
		return nil, uuid.Nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	row := store.Role{
		ID: uuid.Must(uuid.NewV7()), TenantID: tenantID, Name: req.GetName(), Permissions: sortedSet(req.GetPermissions()),
		Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	if row.Permissions == nil {
		row.Permissions = []string{}
	}
	agg := events.Aggregate{Type: aggregateRole, ID: row.ID.String(), TenantID: tenantID.String()}
	var created []events.Event
	err = pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		if err := s.events.Lock(ctx, tx, agg.ID); err != nil {
			return err
		}
		if err := store.New(tx).InsertRole(ctx, store.InsertRoleParams(row)); err != nil {
			if pg.IsUniqueViolation(err, uniqueRoleName) {
				return ErrRoleExists
			}
			return fmt.Errorf("insert role %s: %w", agg.ID, err)
		}
		created, err = s.events.Append(ctx, tx, agg, 0, events.Change{Name: eventRoleCreated, Payload: &identityv1.RoleCreated{
			RoleId: agg.ID, TenantId: agg.TenantID, Name: row.Name, Permissions: row.Permissions, CreateTime: timestamppb.New(now),
		}})
		return err
	})
	if err != nil {
		return nil, uuid.Nil, err
	}
	return roleProto(row), created[len(created)-1].ID, nil
}

// changePermissions grants (grant true) or revokes permissions of a role.
func (s *Service) changePermissions(ctx context.Context, tenant, name string, perms []string, grant bool) (*identityv1.Role, uuid.UUID, error) {
	tenantID, err := uuid.Parse(tenant)
	if err != nil {
		return nil, uuid.Nil, invalidTenant
	}
	if name == RoleAdmin {
		return nil, uuid.Nil, ErrBuiltInRole
	}
	var (
		out    store.Role
		latest uuid.UUID
	)
	err = pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		row, err := q.GetRoleByName(ctx, store.GetRoleByNameParams{TenantID: tenantID, Name: name})
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrRoleNotFound
		}
		if err != nil {
			return fmt.Errorf("get role %q: %w", name, err)
		}
		id := row.ID.String()
		if err := s.events.Lock(ctx, tx, id); err != nil {
			return err
		}
		evs, err := s.events.Load(ctx, tx, id)
		if err != nil {
			return err
		}
		var r role
		for _, ev := range evs {
			if err := r.apply(ev); err != nil {
				return err
			}
		}
		latest, out = evs[len(evs)-1].ID, row
		changes := r.revoke(perms)
		if grant {
			changes = r.grant(perms)
		}
		if len(changes) == 0 {
			return nil
		}
		var all []string
		switch m := changes[0].Payload.(type) {
		case *identityv1.RolePermissionsGranted:
			all = m.GetRolePermissions()
		case *identityv1.RolePermissionsRevoked:
			all = m.GetRolePermissions()
		}
		if all == nil {
			all = []string{}
		}
		now := s.now().UTC().Truncate(time.Microsecond)
		if _, err := q.UpdateRolePermissions(ctx, store.UpdateRolePermissionsParams{
			TenantID: tenantID, ID: row.ID, Permissions: all, Version: r.version + 1, UpdatedAt: now,
		}); err != nil {
			return fmt.Errorf("update role %s: %w", id, err)
		}
		appended, err := s.events.Append(ctx, tx, events.Aggregate{Type: aggregateRole, ID: id, TenantID: r.tenantID}, r.version, changes...)
		if err != nil {
			return err
		}
		latest = appended[len(appended)-1].ID
		out.Permissions, out.Version, out.UpdatedAt = all, r.version+1, now
		return nil
	})
	if err != nil {
		return nil, uuid.Nil, err
	}
	return roleProto(out), latest, nil
}

// listRoles lists a tenant's roles with the built-in admin role.
func (s *Service) listRoles(ctx context.Context, tenant string) ([]*identityv1.Role, error) {
	tenantID, err := uuid.Parse(tenant)
	if err != nil {
		return nil, invalidTenant
	}
	rows, err := store.New(s.deps.Pool).ListRoles(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list roles of tenant %s: %w", tenantID, err)
	}
	out := []*identityv1.Role{{TenantId: tenantID.String(), Name: RoleAdmin, Permissions: []string{permissionAll}, BuiltIn: true}}
	for _, r := range rows {
		out = append(out, roleProto(r))
	}
	slices.SortFunc(out, func(a, b *identityv1.Role) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, nil
}

// assignRoles sets a user's roles.
func (s *Service) assignRoles(ctx context.Context, req *identityv1.AssignRolesRequest) (*identityv1.User, uuid.UUID, error) {
	tenantID, userID, err := parseIDs(req.GetTenantId(), req.GetUserId())
	if err != nil {
		return nil, uuid.Nil, err
	}
	names := sortedSet(req.GetRoles())
	if names == nil {
		names = []string{}
	}
	latest, err := s.updateUser(ctx, userUpdate{
		tenantID: tenantID, userID: userID,
		decide: func(u user) ([]events.Change, error) {
			if slices.Equal(u.roles, names) {
				return nil, nil
			}
			if u.ownAdmin(ctx) && !slices.Contains(names, RoleAdmin) {
				return nil, ErrOwnAdmin
			}
			return []events.Change{{Name: eventUserRolesChanged, Payload: &identityv1.UserRolesChanged{
				UserId: u.id, TenantId: u.tenantID, Roles: names,
			}}}, nil
		},
		write: func(q *store.Queries, u user, version int64, now time.Time) error {
			if err := checkAssignable(ctx, q, tenantID, names); err != nil {
				return err
			}
			if err := q.DeleteUserRoles(ctx, store.DeleteUserRolesParams{TenantID: tenantID, UserID: userID}); err != nil {
				return fmt.Errorf("delete roles of user %s: %w", userID, err)
			}
			for _, n := range names {
				if err := q.InsertUserRole(ctx, store.InsertUserRoleParams{UserID: userID, TenantID: tenantID, RoleName: n}); err != nil {
					return fmt.Errorf("assign role %q to user %s: %w", n, userID, err)
				}
			}
			return touchUser(ctx, q, tenantID, userID, version, now)
		},
	})
	if err != nil {
		return nil, uuid.Nil, err
	}
	u, err := s.getUser(ctx, tenantID.String(), userID.String())
	return u, latest, err
}

// ownAdmin reports whether u holds the admin role and is the caller
// itself: the user who may not take it away from themselves, nor disable
// or delete themselves ([ErrOwnAdmin]). The operator, a service, or
// another admin is no such caller. It reads u's roles as the events have
// them, in the transaction deciding the change, not the token's.
func (u user) ownAdmin(ctx context.Context) bool {
	p, ok := auth.FromContext(ctx)
	return ok && !p.IsOperator() && p.TenantID == u.tenantID && p.Subject == u.id && slices.Contains(u.roles, RoleAdmin)
}

// checkAssignable refuses role names the tenant does not have.
func checkAssignable(ctx context.Context, q *store.Queries, tenantID uuid.UUID, names []string) error {
	var custom []string
	for _, n := range names {
		switch n {
		case RoleAdmin:
		case roleService:
			return &rpc.InvalidFieldError{Field: "roles", Rule: "role.reserved", Message: `"service" is reserved for internal callers`}
		default:
			custom = append(custom, n)
		}
	}
	if len(custom) == 0 {
		return nil
	}
	found, err := q.ExistingRoleNames(ctx, store.ExistingRoleNamesParams{TenantID: tenantID, Names: custom})
	if err != nil {
		return fmt.Errorf("look up roles: %w", err)
	}
	for _, n := range custom {
		if !slices.Contains(found, n) {
			return &rpc.InvalidFieldError{Field: "roles", Rule: "role.exists", Message: fmt.Sprintf("the tenant has no role %q", n)}
		}
	}
	return nil
}

// checkPermission reports whether a user holds perm through its roles.
func (s *Service) checkPermission(ctx context.Context, req *identityv1.CheckPermissionRequest) (bool, error) {
	tenantID, userID, err := parseIDs(req.GetTenantId(), req.GetUserId())
	if err != nil {
		return false, err
	}
	q := store.New(s.deps.Pool)
	row, err := q.GetUser(ctx, store.GetUserParams{TenantID: tenantID, ID: userID})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, ErrUserNotFound
	}
	if err != nil {
		return false, fmt.Errorf("get user %s: %w", userID, err)
	}
	if row.Status != statusActive {
		return false, nil
	}
	names, err := q.ListUserRoles(ctx, store.ListUserRolesParams{TenantID: tenantID, UserID: userID})
	if err != nil {
		return false, fmt.Errorf("roles of user %s: %w", userID, err)
	}
	if slices.Contains(names, RoleAdmin) {
		return true, nil
	}
	if len(names) == 0 {
		return false, nil
	}
	sets, err := q.RolesPermissions(ctx, store.RolesPermissionsParams{TenantID: tenantID, Names: names})
	if err != nil {
		return false, fmt.Errorf("permissions of user %s: %w", userID, err)
	}
	for _, set := range sets {
		for _, granted := range set {
			if grants(granted, req.GetPermission()) {
				return true, nil
			}
		}
	}
	return false, nil
}

// grants reports whether a granted permission covers want
// ("<resource>:<action>"): equal, "*", or "<resource>:*".
func grants(granted, want string) bool {
	if granted == permissionAll || granted == want {
		return true
	}
	resource, ok := strings.CutSuffix(granted, ":*")
	return ok && strings.HasPrefix(want, resource+":")
}

func roleProto(r store.Role) *identityv1.Role {
	return &identityv1.Role{
		Id: r.ID.String(), TenantId: r.TenantID.String(), Name: r.Name, Permissions: r.Permissions,
		Version: r.Version, CreateTime: timestamppb.New(r.CreatedAt), UpdateTime: timestamppb.New(r.UpdatedAt),
	}
}
