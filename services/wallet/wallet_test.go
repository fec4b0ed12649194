package wallet_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/authms/authms/events"
	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/schemas/gen/authms/identity/v1/identityv1connect"
	walletv1 "github.com/authms/authms/schemas/gen/authms/wallet/v1"
	"github.com/authms/authms/schemas/gen/authms/wallet/v1/walletv1connect"
	"github.com/authms/authms/services/servicestest"
)

// env runs identity and wallet for one test.
type env struct {
	*servicestest.Env
	identity identityv1connect.IdentityServiceClient
	wallet   walletv1connect.WalletServiceClient
	pool     *pgxpool.Pool
}

func start(t *testing.T) *env {
	t.Helper()
	e := servicestest.Start(t, "tenant", "identity", "risk", "wallet")
	return &env{
		Env:      e,
		identity: identityv1connect.NewIdentityServiceClient(e.HTTP, e.URL, e.Impersonate()),
		wallet:   walletv1connect.NewWalletServiceClient(e.HTTP, e.URL, e.Impersonate()),
		pool:     e.Pool("wallet"),
	}
}

// owner is a registered user whose wallet exists.
type owner struct {
	tenant, user string
	wallet       *walletv1.Wallet
}

// newOwner registers a user through identity and waits until the wallet
// service has projected the user's wallet.
func (e *env) newOwner(t *testing.T) owner {
	t.Helper()
	tenant := e.NewTenant(t)
	res, err := e.identity.RegisterUser(t.Context(), connect.NewRequest(&identityv1.RegisterUserRequest{
		TenantId: tenant, Email: "owner@example.com", Password: "correct horse battery staple",
	}))
	require.NoError(t, err)
	o := owner{tenant: tenant, user: res.Msg.GetUser().GetId()}
	require.Eventually(t, func() bool {
		res, err := e.wallet.GetWallet(t.Context(), connect.NewRequest(&walletv1.GetWalletRequest{TenantId: o.tenant, UserId: o.user}))
		if err != nil {
			require.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "%v", err)
			return false
		}
		o.wallet = res.Msg.GetWallet()
		return true
	}, 20*time.Second, 20*time.Millisecond, "the wallet appears after registration")
	return o
}

func (e *env) deposit(t *testing.T, o owner, currency string, amount int64, key string) *walletv1.DepositResponse {
	t.Helper()
	res, err := e.wallet.Deposit(t.Context(), connect.NewRequest(&walletv1.DepositRequest{
		TenantId: o.tenant, UserId: o.user, Currency: currency, Amount: amount, IdempotencyKey: key,
	}))
	require.NoError(t, err)
	return res.Msg
}

func (e *env) getWallet(t *testing.T, o owner) *walletv1.Wallet {
	t.Helper()
	res, err := e.wallet.GetWallet(t.Context(), connect.NewRequest(&walletv1.GetWalletRequest{TenantId: o.tenant, UserId: o.user}))
	require.NoError(t, err)
	return res.Msg.GetWallet()
}

// count runs a count query against wallet's own database.
func (e *env) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, e.pool.QueryRow(t.Context(), sql, args...).Scan(&n))
	return n
}

// storedEvents returns the wallet's events from the wallet database, in
// version order, with their payloads.
func (e *env) storedEvents(t *testing.T, walletID string) (versions []int64, payloads []proto.Message) {
	t.Helper()
	rows, err := e.pool.Query(t.Context(), "SELECT version, subject, data FROM events WHERE aggregate_id = $1 ORDER BY version", walletID)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var (
			v       int64
			subject string
			data    []byte
		)
		require.NoError(t, rows.Scan(&v, &subject, &data))
		var m proto.Message
		switch subject {
		case "wallet.wallet.created":
			m = &walletv1.WalletCreated{}
		case "wallet.transaction.completed":
			m = &walletv1.TransactionCompleted{}
		default:
			t.Fatalf("unexpected event %s", subject)
		}
		require.NoError(t, proto.Unmarshal(data, m))
		versions = append(versions, v)
		payloads = append(payloads, m)
	}
	require.NoError(t, rows.Err())
	return versions, payloads
}

// published waits for the event of aggregateID on subject in the WALLET
// stream and decodes its payload into m.
func published(t *testing.T, js jetstream.JetStream, subject, aggregateID string, m proto.Message) events.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, events.StreamName("wallet"), jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	require.NoError(t, err)
	for {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		require.NoError(t, err, "waiting for %s of %s", subject, aggregateID)
		ev, err := events.FromMsg(msg.Subject(), msg.Headers(), msg.Data())
		require.NoError(t, err)
		if ev.AggregateID == aggregateID {
			require.NoError(t, ev.Unmarshal(m))
			return ev
		}
	}
}

// violations returns the fields named in err's buf.validate.Violations.
func violations(t *testing.T, err error) []string {
	t.Helper()
	var ce *connect.Error
	require.ErrorAs(t, err, &ce)
	var fields []string
	for _, d := range ce.Details() {
		v, derr := d.Value()
		require.NoError(t, derr)
		if vs, ok := v.(*validatepb.Violations); ok {
			for _, viol := range vs.GetViolations() {
				var path []string
				for _, el := range viol.GetField().GetElements() {
					path = append(path, el.GetFieldName())
				}
				fields = append(fields, strings.Join(path, "."))
			}
		}
	}
	return fields
}

func balances(w *walletv1.Wallet) map[string]int64 {
	out := map[string]int64{}
	for _, b := range w.GetBalances() {
		out[b.GetCurrency()] = b.GetAmount()
	}
	return out
}

func TestWallet(t *testing.T) {
	t.Parallel()
	e := start(t)

	t.Run("appears empty after registration", func(t *testing.T) {
		t.Parallel()
		o := e.newOwner(t)
		assert.Equal(t, o.user, o.wallet.GetUserId())
		assert.Equal(t, o.tenant, o.wallet.GetTenantId())
		assert.Empty(t, o.wallet.GetBalances())
		assert.Equal(t, int64(1), o.wallet.GetVersion())

		var created walletv1.WalletCreated
		ev := published(t, e.JS, "wallet.wallet.created", o.wallet.GetId(), &created)
		assert.Equal(t, "wallet.wallet.created.v1", ev.Type())
		assert.Equal(t, int64(1), ev.Version)
		assert.Equal(t, o.tenant, ev.TenantID)
		assert.Equal(t, o.user, created.GetUserId())
		assert.Equal(t, o.wallet.GetId(), created.GetWalletId())
		assert.NotEmpty(t, ev.CausationID, "caused by identity.user.created")
	})

	t.Run("deposit, withdraw and list", func(t *testing.T) {
		t.Parallel()
		o := e.newOwner(t)
		d := e.deposit(t, o, "USD", 10_000, "d1")
		assert.Equal(t, walletv1.TransactionKind_TRANSACTION_KIND_DEPOSIT, d.GetTransaction().GetKind())
		assert.Equal(t, int64(10_000), d.GetTransaction().GetBalanceAfter())
		assert.Equal(t, int64(2), d.GetWallet().GetVersion())
		assert.Equal(t, map[string]int64{"USD": 10_000}, balances(d.GetWallet()))

		w, err := e.wallet.Withdraw(t.Context(), connect.NewRequest(&walletv1.WithdrawRequest{
			TenantId: o.tenant, UserId: o.user, Currency: "USD", Amount: 2_500, IdempotencyKey: "w1", ExpectedVersion: proto.Int64(2),
		}))
		require.NoError(t, err)
		assert.Equal(t, walletv1.TransactionKind_TRANSACTION_KIND_WITHDRAWAL, w.Msg.GetTransaction().GetKind())
		assert.Equal(t, int64(7_500), w.Msg.GetTransaction().GetBalanceAfter())
		assert.Equal(t, int64(3), w.Msg.GetWallet().GetVersion())

		e.deposit(t, o, "EUR", 99, "d2")
		got := e.getWallet(t, o)
		assert.Equal(t, map[string]int64{"USD": 7_500, "EUR": 99}, balances(got))
		assert.Equal(t, int64(4), got.GetVersion())

		var completed walletv1.TransactionCompleted
		ev := published(t, e.JS, "wallet.transaction.completed", o.wallet.GetId(), &completed)
		assert.Equal(t, "wallet.transaction.completed.v1", ev.Type())
		assert.Equal(t, int64(2), ev.Version)
		assert.Equal(t, d.GetTransaction().GetId(), completed.GetTransactionId())
		assert.Equal(t, o.user, completed.GetUserId())
		assert.Equal(t, int64(10_000), completed.GetAmount())
		assert.Equal(t, "d1", completed.GetIdempotencyKey())

		versions, _ := e.storedEvents(t, o.wallet.GetId())
		assert.Equal(t, []int64{1, 2, 3, 4}, versions)

		var keys []string
		token := ""
		for page := 0; ; page++ {
			res, err := e.wallet.ListTransactions(t.Context(), connect.NewRequest(&walletv1.ListTransactionsRequest{
				TenantId: o.tenant, UserId: o.user, PageSize: 2, PageToken: token,
			}))
			require.NoError(t, err)
			require.LessOrEqual(t, len(res.Msg.GetTransactions()), 2)
			for _, tx := range res.Msg.GetTransactions() {
				keys = append(keys, tx.GetIdempotencyKey())
			}
			token = res.Msg.GetNextPageToken()
			if token == "" {
				break
			}
			require.Less(t, page, 3, "paging ends")
		}
		assert.Equal(t, []string{"d2", "w1", "d1"}, keys, "newest first")

		all, err := e.wallet.ListTransactions(t.Context(), connect.NewRequest(&walletv1.ListTransactionsRequest{TenantId: o.tenant, UserId: o.user}))
		require.NoError(t, err)
		assert.Len(t, all.Msg.GetTransactions(), 3)
		assert.Empty(t, all.Msg.GetNextPageToken())

		_, err = e.wallet.ListTransactions(t.Context(), connect.NewRequest(&walletv1.ListTransactionsRequest{
			TenantId: o.tenant, UserId: o.user, PageToken: "not-a-token",
		}))
		assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
		assert.Contains(t, violations(t, err), "page_token")
	})

	t.Run("withdraw over the balance", func(t *testing.T) {
		t.Parallel()
		o := e.newOwner(t)
		e.deposit(t, o, "USD", 5, "d1")
		_, err := e.wallet.Withdraw(t.Context(), connect.NewRequest(&walletv1.WithdrawRequest{
			TenantId: o.tenant, UserId: o.user, Currency: "USD", Amount: 6, IdempotencyKey: "w1",
		}))
		assert.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err))
		assert.Contains(t, err.Error(), "insufficient balance")
		_, err = e.wallet.Withdraw(t.Context(), connect.NewRequest(&walletv1.WithdrawRequest{
			TenantId: o.tenant, UserId: o.user, Currency: "EUR", Amount: 1, IdempotencyKey: "w2",
		}))
		assert.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err), "no balance in that currency")
		assert.Equal(t, map[string]int64{"USD": 5}, balances(e.getWallet(t, o)))
		assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM transactions WHERE wallet_id = $1", o.wallet.GetId()))
		versions, _ := e.storedEvents(t, o.wallet.GetId())
		assert.Equal(t, []int64{1, 2}, versions)
	})

	t.Run("a stale expected version is Aborted", func(t *testing.T) {
		t.Parallel()
		o := e.newOwner(t)
		_, err := e.wallet.Deposit(t.Context(), connect.NewRequest(&walletv1.DepositRequest{
			TenantId: o.tenant, UserId: o.user, Currency: "USD", Amount: 1, IdempotencyKey: "d1", ExpectedVersion: proto.Int64(2),
		}))
		assert.Equal(t, connect.CodeAborted, connect.CodeOf(err))
		assert.Empty(t, balances(e.getWallet(t, o)))
	})

	t.Run("a deposit past the largest amount", func(t *testing.T) {
		t.Parallel()
		o := e.newOwner(t)
		e.deposit(t, o, "JPY", math.MaxInt64, "d1")
		_, err := e.wallet.Deposit(t.Context(), connect.NewRequest(&walletv1.DepositRequest{
			TenantId: o.tenant, UserId: o.user, Currency: "JPY", Amount: 1, IdempotencyKey: "d2",
		}))
		assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
		assert.Contains(t, violations(t, err), "amount")
		assert.Equal(t, map[string]int64{"JPY": math.MaxInt64}, balances(e.getWallet(t, o)))
	})

	t.Run("the wallet of an unknown user is NotFound", func(t *testing.T) {
		t.Parallel()
		o := e.newOwner(t)
		for name, req := range map[string]struct{ tenant, user string }{
			"unknown user":   {tenant: o.tenant, user: uuid.NewString()},
			"another tenant": {tenant: uuid.NewString(), user: o.user},
		} {
			_, err := e.wallet.GetWallet(t.Context(), connect.NewRequest(&walletv1.GetWalletRequest{TenantId: req.tenant, UserId: req.user}))
			assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), name)
			_, err = e.wallet.Deposit(t.Context(), connect.NewRequest(&walletv1.DepositRequest{
				TenantId: req.tenant, UserId: req.user, Currency: "USD", Amount: 1, IdempotencyKey: "k",
			}))
			assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), name)
			_, err = e.wallet.Withdraw(t.Context(), connect.NewRequest(&walletv1.WithdrawRequest{
				TenantId: req.tenant, UserId: req.user, Currency: "USD", Amount: 1, IdempotencyKey: "k",
			}))
			assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), name)
			_, err = e.wallet.ListTransactions(t.Context(), connect.NewRequest(&walletv1.ListTransactionsRequest{TenantId: req.tenant, UserId: req.user}))
			assert.Equal(t, connect.CodeNotFound, connect.CodeOf(err), name)
		}
		assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM transactions WHERE wallet_id = $1", o.wallet.GetId()),
			"the deposit in another tenant did not reach the user's wallet")
		assert.Equal(t, 1, e.count(t, "SELECT count(*) FROM wallets WHERE user_id = $1", o.user))
	})
}

func TestBadMoneyInputWritesNothing(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOwner(t)

	tests := []struct {
		name      string
		currency  string
		amount    int64
		key       string
		wantField string
	}{
		{name: "negative amount", currency: "USD", amount: -1, key: "k", wantField: "amount"},
		{name: "zero amount", currency: "USD", amount: 0, key: "k", wantField: "amount"},
		{name: "unknown currency", currency: "XXX", amount: 1, key: "k", wantField: "currency"},
		{name: "lower-case currency", currency: "usd", amount: 1, key: "k", wantField: "currency"},
		{name: "missing currency", currency: "", amount: 1, key: "k", wantField: "currency"},
		{name: "missing idempotency key", currency: "USD", amount: 1, key: "", wantField: "idempotency_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.wallet.Deposit(t.Context(), connect.NewRequest(&walletv1.DepositRequest{
				TenantId: o.tenant, UserId: o.user, Currency: tt.currency, Amount: tt.amount, IdempotencyKey: tt.key,
			}))
			assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "deposit")
			assert.Contains(t, violations(t, err), tt.wantField, "deposit")
			_, err = e.wallet.Withdraw(t.Context(), connect.NewRequest(&walletv1.WithdrawRequest{
				TenantId: o.tenant, UserId: o.user, Currency: tt.currency, Amount: tt.amount, IdempotencyKey: tt.key,
			}))
			assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "withdraw")
			assert.Contains(t, violations(t, err), tt.wantField, "withdraw")
		})
	}

	t.Run("bad ids", func(t *testing.T) {
		_, err := e.wallet.Deposit(t.Context(), connect.NewRequest(&walletv1.DepositRequest{
			TenantId: "tenant-1", UserId: "user-1", Currency: "USD", Amount: 1, IdempotencyKey: "k",
		}))
		assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
		assert.Subset(t, violations(t, err), []string{"tenant_id", "user_id"})
	})

	t.Run("raw JSON", func(t *testing.T) {
		for name, amount := range map[string]string{
			"amount past int64":     `"9223372036854775808"`,
			"amount past int64 raw": `9223372036854775808`,
			"fractional amount":     `1.5`,
			"negative amount":       `"-5"`,
		} {
			body := fmt.Sprintf(`{"tenant_id":%q,"user_id":%q,"currency":"USD","amount":%s,"idempotency_key":"k"}`, o.tenant, o.user, amount)
			for _, proc := range []string{walletv1connect.WalletServiceDepositProcedure, walletv1connect.WalletServiceWithdrawProcedure} {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.URL+proc, strings.NewReader(body))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+e.Token(t, o.tenant, o.user))
				res, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				raw, err := io.ReadAll(res.Body)
				require.NoError(t, err)
				require.NoError(t, res.Body.Close())
				assert.Equal(t, http.StatusBadRequest, res.StatusCode, "%s %s: %s", name, proc, raw)
				assert.Contains(t, string(raw), `"code":"invalid_argument"`, "%s %s", name, proc)
			}
		}
	})

	assert.Empty(t, balances(e.getWallet(t, o)))
	assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM transactions"))
	assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM balances"))
	versions, _ := e.storedEvents(t, o.wallet.GetId())
	assert.Equal(t, []int64{1}, versions, "only wallet.wallet.created")
	assert.Equal(t, 0, e.count(t, "SELECT count(*) FROM outbox WHERE subject = 'wallet.transaction.completed'"))
}

func TestConcurrentWithdrawalsNeverOverdraw(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOwner(t)
	e.deposit(t, o, "USD", 100, "funding")

	const n = 200
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[connect.Code]int{}
		ok    int
	)
	for i := range n {
		wg.Go(func() {
			_, err := e.wallet.Withdraw(context.WithoutCancel(t.Context()), connect.NewRequest(&walletv1.WithdrawRequest{
				TenantId: o.tenant, UserId: o.user, Currency: "USD", Amount: 1, IdempotencyKey: fmt.Sprintf("w%d", i),
			}))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				codes[connect.CodeOf(err)]++
				return
			}
			ok++
		})
	}
	wg.Wait()
	assert.Equal(t, 100, ok, "exactly the balance is withdrawn")
	assert.Equal(t, map[connect.Code]int{connect.CodeFailedPrecondition: n - 100}, codes)
	assert.Equal(t, map[string]int64{"USD": 0}, balances(e.getWallet(t, o)))

	versions, payloads := e.storedEvents(t, o.wallet.GetId())
	withdrawals := 0
	for _, p := range payloads {
		if c, ok := p.(*walletv1.TransactionCompleted); ok && c.GetKind() == walletv1.TransactionKind_TRANSACTION_KIND_WITHDRAWAL {
			withdrawals++
		}
	}
	assert.Equal(t, 100, withdrawals, "one event per successful withdrawal")
	want := make([]int64, 102) // created, the deposit, 100 withdrawals
	for i := range want {
		want[i] = int64(i + 1)
	}
	assert.Equal(t, want, versions, "versions are gap-free")
	assert.Equal(t, 101, e.count(t, "SELECT count(*) FROM transactions WHERE wallet_id = $1", o.wallet.GetId()))
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := start(t)

	t.Run("sent 10 times concurrently has one effect", func(t *testing.T) {
		t.Parallel()
		o := e.newOwner(t)
		const n = 10
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			ids = map[string]int{}
		)
		for range n {
			wg.Go(func() {
				res, err := e.wallet.Deposit(context.WithoutCancel(t.Context()), connect.NewRequest(&walletv1.DepositRequest{
					TenantId: o.tenant, UserId: o.user, Currency: "EUR", Amount: 700, IdempotencyKey: "pay-42",
				}))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					ids["error: "+connect.CodeOf(err).String()]++
					return
				}
				ids[res.Msg.GetTransaction().GetId()]++
			})
		}
		wg.Wait()
		require.Len(t, ids, 1, "every response carries the same transaction: %v", ids)
		for id, times := range ids {
			assert.NotEmpty(t, id)
			assert.Equal(t, n, times)
		}
		assert.Equal(t, map[string]int64{"EUR": 700}, balances(e.getWallet(t, o)))
		versions, _ := e.storedEvents(t, o.wallet.GetId())
		assert.Equal(t, []int64{1, 2}, versions, "one event")
	})

	t.Run("a later repeat returns the stored result", func(t *testing.T) {
		t.Parallel()
		o := e.newOwner(t)
		first, err := e.wallet.Withdraw(t.Context(), connect.NewRequest(&walletv1.WithdrawRequest{
			TenantId: o.tenant, UserId: o.user, Currency: "EUR", Amount: 1, IdempotencyKey: "w",
		}))
		assert.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err), "a refused command stores nothing")
		assert.Nil(t, first)

		d := e.deposit(t, o, "EUR", 50, "d")
		w1, err := e.wallet.Withdraw(t.Context(), connect.NewRequest(&walletv1.WithdrawRequest{
			TenantId: o.tenant, UserId: o.user, Currency: "EUR", Amount: 20, IdempotencyKey: "w", ExpectedVersion: proto.Int64(2),
		}))
		require.NoError(t, err, "the key of a refused command is still free")
		e.deposit(t, o, "EUR", 5, "d2")
		w2, err := e.wallet.Withdraw(t.Context(), connect.NewRequest(&walletv1.WithdrawRequest{
			TenantId: o.tenant, UserId: o.user, Currency: "EUR", Amount: 20, IdempotencyKey: "w", ExpectedVersion: proto.Int64(2),
		}))
		require.NoError(t, err, "a repeat with its original expected version replays")
		assert.True(t, proto.Equal(w1.Msg.GetTransaction(), w2.Msg.GetTransaction()))
		assert.Equal(t, map[string]int64{"EUR": 35}, balances(w2.Msg.GetWallet()), "the wallet as it is now")
		again := e.deposit(t, o, "EUR", 50, "d")
		assert.True(t, proto.Equal(d.GetTransaction(), again.GetTransaction()))
		assert.Equal(t, 3, e.count(t, "SELECT count(*) FROM transactions WHERE wallet_id = $1", o.wallet.GetId()))
	})

	t.Run("reused for a different request", func(t *testing.T) {
		t.Parallel()
		o := e.newOwner(t)
		e.deposit(t, o, "USD", 10, "k")
		for name, req := range map[string]*walletv1.DepositRequest{
			"amount":   {TenantId: o.tenant, UserId: o.user, Currency: "USD", Amount: 11, IdempotencyKey: "k"},
			"currency": {TenantId: o.tenant, UserId: o.user, Currency: "EUR", Amount: 10, IdempotencyKey: "k"},
		} {
			_, err := e.wallet.Deposit(t.Context(), connect.NewRequest(req))
			assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), name)
			assert.Contains(t, violations(t, err), "idempotency_key", name)
		}
		_, err := e.wallet.Withdraw(t.Context(), connect.NewRequest(&walletv1.WithdrawRequest{
			TenantId: o.tenant, UserId: o.user, Currency: "USD", Amount: 10, IdempotencyKey: "k",
		}))
		assert.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "kind")
		assert.Equal(t, map[string]int64{"USD": 10}, balances(e.getWallet(t, o)))
	})
}
