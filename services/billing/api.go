package billing

import (
	"context"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	billingv1 "github.com/authms/authms/schemas/gen/authms/billing/v1"
	"github.com/authms/authms/schemas/gen/authms/billing/v1/billingv1connect"
	commonv1 "github.com/authms/authms/schemas/gen/authms/common/v1"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/rpc"
)

// api serves BillingService. Requests reach it validated (protovalidate), so
// ids are well-formed UUIDs.
type api struct{ s *Service }

var _ billingv1connect.BillingServiceHandler = (*api)(nil)

// GetCustomer returns the cached user; NotFound if the tenant has no such user.
func (a *api) GetCustomer(ctx context.Context, req *connect.Request[billingv1.GetCustomerRequest]) (*connect.Response[billingv1.GetCustomerResponse], error) {
	tenantID, err := parseID("tenant_id", req.Msg.GetTenantId())
	if err != nil {
		return nil, err
	}
	userID, err := parseID("user_id", req.Msg.GetUserId())
	if err != nil {
		return nil, err
	}
	if err := a.awaitMinPosition(ctx, req.Msg.GetMinPosition()); err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	c, err := a.s.getCustomer(ctx, tenantID, userID)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&billingv1.GetCustomerResponse{Customer: toProto(c)}), nil
}

// FindCustomerByEmail looks the user up through the blind index; NotFound if
// no user of the tenant has that email.
func (a *api) FindCustomerByEmail(ctx context.Context, req *connect.Request[billingv1.FindCustomerByEmailRequest]) (*connect.Response[billingv1.FindCustomerByEmailResponse], error) {
	tenantID, err := parseID("tenant_id", req.Msg.GetTenantId())
	if err != nil {
		return nil, err
	}
	if err := a.awaitMinPosition(ctx, req.Msg.GetMinPosition()); err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	c, err := a.s.findCustomerByEmail(ctx, tenantID, req.Msg.GetEmail())
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&billingv1.FindCustomerByEmailResponse{Customer: toProto(c)}), nil
}

// awaitMinPosition waits until billing's cache reflects the request's
// min_position, typically the IDENTITY position of a RegisterUser or
// ChangeEmail response; unset, it returns at once.
func (a *api) awaitMinPosition(ctx context.Context, pos *commonv1.Position) error {
	return a.s.deps.AwaitPosition(ctx, a.s.Projectors(), rpc.PositionFromProto(pos))
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

func toProto(c customer) *billingv1.Customer {
	return &billingv1.Customer{
		UserId:     c.UserID.String(),
		TenantId:   c.TenantID.String(),
		Email:      c.Email,
		Version:    c.Version,
		UpdateTime: timestamppb.New(c.UpdatedAt),
	}
}

// Policies says who may call each procedure: a user reads their own
// customer record; looking customers up by email is for tenant admins.
func (s *Service) Policies() auth.Policies {
	return auth.Policies{
		billingv1connect.BillingServiceGetCustomerProcedure:         auth.Owner,
		billingv1connect.BillingServiceFindCustomerByEmailProcedure: auth.Admin,
	}
}
