package wallet

import (
	"context"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	commonv1 "github.com/authms/authms/schemas/gen/authms/common/v1"
	walletv1 "github.com/authms/authms/schemas/gen/authms/wallet/v1"
	"github.com/authms/authms/schemas/gen/authms/wallet/v1/walletv1connect"
	"github.com/authms/authms/services/internal/auth"
	"github.com/authms/authms/services/internal/rpc"
)

// api adapts the service to its Connect interface. Requests reach it
// validated against the schema's rules (amount > 0, a supported currency,
// an idempotency key).
type api struct{ s *Service }

var _ walletv1connect.WalletServiceHandler = (*api)(nil)

func (a *api) GetWallet(ctx context.Context, req *connect.Request[walletv1.GetWalletRequest]) (*connect.Response[walletv1.GetWalletResponse], error) {
	// The wallet is created from identity.user.created: a min_position from
	// RegisterUser waits for that.
	if err := a.s.deps.AwaitPosition(ctx, a.s.Projectors(), rpc.PositionFromProto(req.Msg.GetMinPosition())); err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	w, err := a.s.getWallet(ctx, req.Msg.GetTenantId(), req.Msg.GetUserId())
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&walletv1.GetWalletResponse{Wallet: w}), nil
}

func (a *api) Deposit(ctx context.Context, req *connect.Request[walletv1.DepositRequest]) (*connect.Response[walletv1.DepositResponse], error) {
	m := req.Msg
	t, w, pos, err := a.move(ctx, moneyRequest{
		tenantID: m.GetTenantId(), userID: m.GetUserId(), kind: walletv1.TransactionKind_TRANSACTION_KIND_DEPOSIT,
		currency: m.GetCurrency(), amount: m.GetAmount(), idempotencyKey: m.GetIdempotencyKey(), expectedVersion: m.ExpectedVersion,
	})
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&walletv1.DepositResponse{Transaction: t, Wallet: w, Position: pos}), nil
}

func (a *api) Withdraw(ctx context.Context, req *connect.Request[walletv1.WithdrawRequest]) (*connect.Response[walletv1.WithdrawResponse], error) {
	m := req.Msg
	t, w, pos, err := a.move(ctx, moneyRequest{
		tenantID: m.GetTenantId(), userID: m.GetUserId(), kind: walletv1.TransactionKind_TRANSACTION_KIND_WITHDRAWAL,
		currency: m.GetCurrency(), amount: m.GetAmount(), idempotencyKey: m.GetIdempotencyKey(), expectedVersion: m.ExpectedVersion,
	})
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&walletv1.WithdrawResponse{Transaction: t, Wallet: w, Position: pos}), nil
}

func (a *api) ListTransactions(ctx context.Context, req *connect.Request[walletv1.ListTransactionsRequest]) (*connect.Response[walletv1.ListTransactionsResponse], error) {
	txns, next, err := a.s.listTransactions(ctx, req.Msg)
	if err != nil {
		return nil, connectError(ctx, a.s.deps.Logger, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&walletv1.ListTransactionsResponse{Transactions: txns, NextPageToken: next}), nil
}

// moneyRequest is the part Deposit and Withdraw requests share.
type moneyRequest struct {
	tenantID, userID string
	kind             walletv1.TransactionKind
	currency         string
	amount           int64
	idempotencyKey   string
	expectedVersion  *int64
}

// move turns a validated money request into a command, runs it and waits
// for the position of the wallet's newest event for the response.
func (a *api) move(ctx context.Context, r moneyRequest) (*walletv1.Transaction, *walletv1.Wallet, *commonv1.Position, error) {
	tenantID, userID, err := parseIDs(r.tenantID, r.userID)
	if err != nil {
		return nil, nil, nil, err
	}
	t, w, latest, err := a.s.move(ctx, moneyCommand{
		tenantID: tenantID, userID: userID, kind: r.kind, currency: r.currency, amount: r.amount,
		idempotencyKey: r.idempotencyKey, expectedVersion: r.expectedVersion,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return t, w, rpc.PositionToProto(a.s.deps.Position(ctx, latest)), nil
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

// Policies says who may call each procedure: a wallet is its owner's to
// read and spend from, and an admin of the owner's tenant may read and move
// it too. Money comes in only through an admin: an owner crediting their own
// balance would mint money. No service calls wallet.
func (s *Service) Policies() auth.Policies {
	return auth.Policies{
		walletv1connect.WalletServiceGetWalletProcedure:        auth.Owner,
		walletv1connect.WalletServiceDepositProcedure:          auth.Admin,
		walletv1connect.WalletServiceWithdrawProcedure:         auth.Owner,
		walletv1connect.WalletServiceListTransactionsProcedure: auth.Owner,
	}
}
