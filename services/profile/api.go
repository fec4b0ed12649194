package profile

import (
	"context"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	profilev1 "github.com/authms/authms/schemas/gen/authms/profile/v1"
	"github.com/authms/authms/schemas/gen/authms/profile/v1/profilev1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/rpc"
	"github.com/authms/authms/services/profile/store"
)

// api serves ProfileService. Requests reach it validated (protovalidate), so
// ids are well-formed UUIDs.
type api struct{ s *Service }

var _ profilev1connect.ProfileServiceHandler = (*api)(nil)

// GetProfile returns a user's profile; NotFound if the tenant has no such user.
func (a *api) GetProfile(ctx context.Context, req *connect.Request[profilev1.GetProfileRequest]) (*connect.Response[profilev1.GetProfileResponse], error) {
	tenantID, err := parseID("tenant_id", req.Msg.GetTenantId())
	if err != nil {
		return nil, err
	}
	userID, err := parseID("user_id", req.Msg.GetUserId())
	if err != nil {
		return nil, err
	}
	// The default profile is created from identity.user.created: a
	// min_position from RegisterUser waits for that.
	if err := a.s.deps.AwaitPosition(ctx, a.s.Projectors(), rpc.PositionFromProto(req.Msg.GetMinPosition())); err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	p, err := a.s.getProfile(ctx, tenantID, userID)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&profilev1.GetProfileResponse{Profile: toProto(p)}), nil
}

// UpdateProfile changes the attributes set in the request; Aborted if
// expected_version is set and stale, InvalidArgument for an unknown time zone.
func (a *api) UpdateProfile(ctx context.Context, req *connect.Request[profilev1.UpdateProfileRequest]) (*connect.Response[profilev1.UpdateProfileResponse], error) {
	m := req.Msg
	tenantID, err := parseID("tenant_id", m.GetTenantId())
	if err != nil {
		return nil, err
	}
	userID, err := parseID("user_id", m.GetUserId())
	if err != nil {
		return nil, err
	}
	cmd := updateCommand{
		TenantID: tenantID,
		UserID:   userID,
		Change: change{
			DisplayName: m.DisplayName,
			Locale:      m.Locale,
			Timezone:    m.Timezone,
		},
		ExpectedVersion: m.ExpectedVersion,
	}
	p, latest, err := a.s.updateProfile(ctx, cmd)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	pos := a.s.deps.Position(ctx, latest)
	return connect.NewResponse(&profilev1.UpdateProfileResponse{Profile: toProto(p), Position: rpc.PositionToProto(pos)}), nil
}

// parseID parses an id field. The declarative rules have checked it already;
// this keeps a handler mounted without them from panicking.
func parseID(field, value string) (uuid.UUID, error) {
	id, err := uuid.Parse(value)
	if err != nil {
		return uuid.UUID{}, rpc.FieldError(field, "string.uuid", "value must be a valid UUID")
	}
	return id, nil
}

func toProto(p store.Profile) *profilev1.Profile {
	return &profilev1.Profile{
		UserId:      p.UserID.String(),
		TenantId:    p.TenantID.String(),
		DisplayName: p.DisplayName,
		Locale:      p.Locale,
		Timezone:    p.Timezone,
		Version:     p.Version,
		CreateTime:  timestamppb.New(p.CreateTime),
		UpdateTime:  timestamppb.New(p.UpdateTime),
	}
}

// Policies says who may call each procedure: a profile is its user's, and
// an admin of the user's tenant may read and change it too.
func (s *Service) Policies() auth.Policies {
	return auth.Policies{
		profilev1connect.ProfileServiceGetProfileProcedure:    auth.Owner,
		profilev1connect.ProfileServiceUpdateProfileProcedure: auth.Owner,
	}
}
