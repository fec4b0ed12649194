package wallet

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	walletv1 "github.com/authms/authms/schemas/gen/authms/wallet/v1"
	"github.com/authms/authms/services/wallet/store"
)

// subjectUserCreated is the identity event that gives a user a wallet.
const subjectUserCreated = "identity.user.created"

// walletsProjector is the projector that creates an empty wallet for every
// user identity registers (durable consumer "wallet_wallets").
func (s *Service) walletsProjector() projections.Projector {
	return projections.Projector{
		Service: Name,
		Name:    "wallets",
		Source:  "identity",
		Handlers: map[string]projections.Apply{
			subjectUserCreated: s.onUserCreated,
		},
	}
}

// onUserCreated creates the new user's wallet and records
// wallet.wallet.created, in the projector's transaction. A user who already
// has a wallet keeps it and no event is recorded.
func (s *Service) onUserCreated(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	var m identityv1.UserCreated
	if err := ev.Unmarshal(&m); err != nil {
		return err
	}
	tenantID, err := uuid.Parse(m.GetTenantId())
	if err != nil {
		return events.Permanent(fmt.Errorf("event %s: bad tenant_id %q", ev.ID, m.GetTenantId()))
	}
	userID, err := uuid.Parse(m.GetUserId())
	if err != nil {
		return events.Permanent(fmt.Errorf("event %s: bad user_id %q", ev.ID, m.GetUserId()))
	}
	id := uuid.Must(uuid.NewV7())
	now := s.now().UTC().Truncate(time.Microsecond)
	n, err := store.New(tx).CreateWallet(ctx, store.CreateWalletParams{ID: id, TenantID: tenantID, UserID: userID, CreatedAt: now})
	if err != nil {
		return fmt.Errorf("create wallet of user %s: %w", userID, err)
	}
	if n == 0 {
		return nil
	}
	agg := events.Aggregate{Type: aggregateWallet, ID: id.String(), TenantID: tenantID.String()}
	_, err = s.events.Append(ctx, tx, agg, 0, events.Change{Name: eventWalletCreated, Payload: &walletv1.WalletCreated{
		WalletId:   id.String(),
		TenantId:   tenantID.String(),
		UserId:     userID.String(),
		CreateTime: timestamppb.New(now),
	}})
	return err
}
