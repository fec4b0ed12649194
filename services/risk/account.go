package risk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authms/authms/events"
	"github.com/authms/authms/events/pg"
	riskv1 "github.com/authms/authms/schemas/gen/authms/risk/v1"
	"github.com/authms/authms/services/risk/store"
)

// Aggregate types and event names.
const (
	aggregateAccount     = "account"
	aggregateIP          = "ip"
	eventAccountLocked   = "locked"
	eventAccountUnlocked = "unlocked"
	eventIPThrottled     = "throttled"
)

// Values of login_attempts.outcome.
const (
	outcomePending = "pending"
	outcomeFailure = "failure"
	outcomeSuccess = "success"
)

// policies are the limits one request is decided with.
type policies struct {
	lockout LockoutPolicy
	ip      IPThrottlePolicy
}

// overrides are the policies a request may carry.
type overrides struct {
	lockout *riskv1.LockoutPolicy
	ip      *riskv1.IpThrottlePolicy
}

// policies resolves a request's policies: its own, else the tenant's
// projected lockout policy, else the configured defaults.
func (s *Service) policies(ctx context.Context, q *store.Queries, tenantID uuid.UUID, o overrides) (policies, error) {
	p := policies{lockout: s.cfg.Lockout, ip: s.cfg.IPThrottle}
	if o.lockout != nil {
		p.lockout = LockoutPolicy{
			MaxFailures: int(o.lockout.GetMaxFailures()),
			Window:      o.lockout.GetWindow().AsDuration(),
			Duration:    o.lockout.GetLockoutDuration().AsDuration(),
		}
	} else {
		row, err := q.GetTenantLockoutPolicy(ctx, tenantID)
		switch {
		case err == nil:
			p.lockout = LockoutPolicy{
				MaxFailures: int(row.MaxFailures),
				Window:      time.Duration(row.WindowSeconds) * time.Second,
				Duration:    time.Duration(row.DurationSeconds) * time.Second,
			}
		case !errors.Is(err, pgx.ErrNoRows):
			return policies{}, fmt.Errorf("read lockout policy of tenant %s: %w", tenantID, err)
		}
	}
	if o.ip != nil {
		p.ip = IPThrottlePolicy{MaxFailures: int(o.ip.GetMaxFailures()), Window: o.ip.GetWindow().AsDuration()}
	}
	return p, nil
}

// decision is the answer to "may this attempt proceed?".
type decision struct {
	allowed    bool
	reason     riskv1.DenyReason
	retryAfter time.Duration
}

func deny(reason riskv1.DenyReason, retryAfter time.Duration) decision {
	return decision{reason: reason, retryAfter: retryAfter}
}

// lockedAt reports whether an account locked until lockedUntil is locked
// at now, and for how much longer.
func lockedAt(lockedUntil pgtype.Timestamptz, now time.Time) (bool, time.Duration) {
	if lockedUntil.Valid && lockedUntil.Time.After(now) {
		return true, lockedUntil.Time.Sub(now)
	}
	return false, 0
}

// counts are the attempts that count against a limit at some instant.
type counts struct {
	failures, pending int
	oldestFailure     time.Time
	firstExpiry       time.Time
}

// freesAt returns when one of the counted attempts stops counting: the
// oldest failure leaves the window or the first reservation lapses.
func (c counts) freesAt(window time.Duration) time.Time {
	var at time.Time
	if c.failures > 0 {
		at = c.oldestFailure.Add(window)
	}
	if c.pending > 0 && (at.IsZero() || c.firstExpiry.Before(at)) {
		at = c.firstExpiry
	}
	return at
}

func (s *Service) accountCounts(ctx context.Context, q *store.Queries, sub subject, resetAt, now time.Time, window time.Duration) (counts, error) {
	since := now.Add(-window)
	if resetAt.After(since) {
		since = resetAt
	}
	r, err := q.AccountAttempts(ctx, store.AccountAttemptsParams{TenantID: sub.tenantID, AccountKey: sub.account, Since: since, Now: now})
	if err != nil {
		return counts{}, fmt.Errorf("count attempts of account %s: %w", sub.accountID(), err)
	}
	return counts{failures: int(r.Failures), pending: int(r.Pending), oldestFailure: r.OldestFailure, firstExpiry: r.FirstExpiry}, nil
}

func (s *Service) addressCounts(ctx context.Context, q *store.Queries, sub subject, now time.Time, window time.Duration) (counts, error) {
	r, err := q.AddressAttempts(ctx, store.AddressAttemptsParams{TenantID: sub.tenantID, Ip: sub.ip, Since: now.Add(-window), Now: now})
	if err != nil {
		return counts{}, fmt.Errorf("count attempts of address %s: %w", sub.ipID(), err)
	}
	return counts{failures: int(r.Failures), pending: int(r.Pending), oldestFailure: r.OldestFailure, firstExpiry: r.FirstExpiry}, nil
}

// locked holds the account and address rows of a subject, locked.
type locked struct {
	account store.LockAccountRow
	address pgtype.Timestamptz // throttled_until
}

// lockRows creates the subject's account and address rows if need be and
// locks them, account first, until tx ends. Every command that changes
// either takes both locks in this order, so they never deadlock.
func lockRows(ctx context.Context, q *store.Queries, sub subject, now time.Time) (locked, error) {
	var (
		rows locked
		err  error
	)
	// A row that prune deletes between the insert and the lock is created
	// again on the second try.
	for try := 0; ; try++ {
		if err := q.EnsureAccount(ctx, store.EnsureAccountParams{TenantID: sub.tenantID, AccountKey: sub.account, Now: now}); err != nil {
			return locked{}, fmt.Errorf("create account %s: %w", sub.accountID(), err)
		}
		rows.account, err = q.LockAccount(ctx, store.LockAccountParams{TenantID: sub.tenantID, AccountKey: sub.account})
		if err == nil {
			break
		}
		if !errors.Is(err, pgx.ErrNoRows) || try > 0 {
			return locked{}, fmt.Errorf("lock account %s: %w", sub.accountID(), err)
		}
	}
	rows.address, err = lockAddress(ctx, q, sub, now)
	if err != nil {
		return locked{}, err
	}
	return rows, nil
}

// lockAddress creates the subject's address row if need be, locks it until
// tx ends and returns its throttled_until. A command on the address alone
// (a reset request) takes no account lock, so it cannot deadlock with
// lockRows either.
func lockAddress(ctx context.Context, q *store.Queries, sub subject, now time.Time) (pgtype.Timestamptz, error) {
	// A row that prune deletes between the insert and the lock is created
	// again on the second try.
	for try := 0; ; try++ {
		if err := q.EnsureAddress(ctx, store.EnsureAddressParams{TenantID: sub.tenantID, Ip: sub.ip, Now: now}); err != nil {
			return pgtype.Timestamptz{}, fmt.Errorf("create address %s: %w", sub.ipID(), err)
		}
		until, err := q.LockAddress(ctx, store.LockAddressParams{TenantID: sub.tenantID, Ip: sub.ip})
		if err == nil {
			return until, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) || try > 0 {
			return pgtype.Timestamptz{}, fmt.Errorf("lock address %s: %w", sub.ipID(), err)
		}
	}
}

// evaluate decides whether an attempt may proceed now. With lock set (the
// caller holds the rows), an account whose failures already reach the
// limit (its policy was lowered) is locked on the spot.
func (s *Service) evaluate(ctx context.Context, tx pgx.Tx, sub subject, rows locked, p policies, now time.Time, lock bool) (decision, error) {
	q := store.New(tx)
	if is, left := lockedAt(rows.account.LockedUntil, now); is {
		return deny(riskv1.DenyReason_DENY_REASON_ACCOUNT_LOCKED, left), nil
	}
	acct, err := s.accountCounts(ctx, q, sub, rows.account.FailuresResetAt, now, p.lockout.Window)
	if err != nil {
		return decision{}, err
	}
	if acct.failures >= p.lockout.MaxFailures {
		if lock {
			if err := s.lockAccount(ctx, tx, sub, rows.account.UserID, acct.failures, p.lockout, now); err != nil {
				return decision{}, err
			}
		}
		return deny(riskv1.DenyReason_DENY_REASON_ACCOUNT_LOCKED, p.lockout.Duration), nil
	}
	if acct.failures+acct.pending >= p.lockout.MaxFailures {
		return deny(riskv1.DenyReason_DENY_REASON_ACCOUNT_BUSY, acct.freesAt(p.lockout.Window).Sub(now)), nil
	}
	addr, err := s.addressCounts(ctx, q, sub, now, p.ip.Window)
	if err != nil {
		return decision{}, err
	}
	if addr.failures+addr.pending >= p.ip.MaxFailures {
		return deny(riskv1.DenyReason_DENY_REASON_IP_THROTTLED, addr.freesAt(p.ip.Window).Sub(now)), nil
	}
	return decision{allowed: true}, nil
}

// attemptLogin decides an attempt and, when it may proceed, reserves it,
// in one transaction under the account's and the address's row locks.
func (s *Service) attemptLogin(ctx context.Context, req *riskv1.AttemptLoginRequest) (*riskv1.AttemptLoginResponse, error) {
	sub, err := s.subjectOf(ctx, req.GetTenantId(), req.GetEmail(), req.GetIp())
	if err != nil {
		return nil, err
	}
	o := overrides{lockout: req.GetLockoutPolicy(), ip: req.GetIpThrottlePolicy()}
	var res *riskv1.AttemptLoginResponse
	err = pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		rows, err := lockRows(ctx, q, sub, s.clock())
		if err != nil {
			return err
		}
		p, err := s.policies(ctx, q, sub.tenantID, o)
		if err != nil {
			return err
		}
		// The clock is read once the rows are ours: whoever held them
		// before has committed everything it decided at earlier instants.
		now := s.clock()
		d, err := s.evaluate(ctx, tx, sub, rows, p, now, true)
		if err != nil {
			return err
		}
		if !d.allowed {
			res = &riskv1.AttemptLoginResponse{Reason: d.reason, RetryAfter: retryAfter(d.retryAfter)}
			return nil
		}
		id := uuid.Must(uuid.NewV7())
		if err := q.InsertAttempt(ctx, store.InsertAttemptParams{
			ID: id, TenantID: sub.tenantID, AccountKey: sub.account, Ip: sub.ip, Outcome: outcomePending,
			CreatedAt: now, ExpiresAt: now.Add(s.cfg.ReservationTTL),
		}); err != nil {
			return fmt.Errorf("reserve an attempt of account %s: %w", sub.accountID(), err)
		}
		if err := touch(ctx, q, sub, pgtype.UUID{}, now); err != nil {
			return err
		}
		res = &riskv1.AttemptLoginResponse{Allowed: true, AttemptId: id.String()}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// checkLogin is evaluate without reserving or locking anything.
func (s *Service) checkLogin(ctx context.Context, req *riskv1.CheckLoginRequest) (*riskv1.CheckLoginResponse, error) {
	sub, err := s.subjectOf(ctx, req.GetTenantId(), req.GetEmail(), req.GetIp())
	if err != nil {
		return nil, err
	}
	o := overrides{lockout: req.GetLockoutPolicy(), ip: req.GetIpThrottlePolicy()}
	var res *riskv1.CheckLoginResponse
	err = pgx.BeginTxFunc(ctx, s.deps.Pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		q := store.New(tx)
		now := s.clock()
		var rows locked
		acct, err := q.GetAccount(ctx, store.GetAccountParams{TenantID: sub.tenantID, AccountKey: sub.account})
		switch {
		case err == nil:
			rows.account = store.LockAccountRow(acct)
		case errors.Is(err, pgx.ErrNoRows):
			rows.account.FailuresResetAt = now.Add(-maxWindow) // no attempts yet
		default:
			return fmt.Errorf("get account %s: %w", sub.accountID(), err)
		}
		p, err := s.policies(ctx, q, sub.tenantID, o)
		if err != nil {
			return err
		}
		d, err := s.evaluate(ctx, tx, sub, rows, p, now, false)
		if err != nil {
			return err
		}
		res = &riskv1.CheckLoginResponse{Allowed: d.allowed, Reason: d.reason}
		if !d.allowed {
			res.RetryAfter = retryAfter(d.retryAfter)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// outcome is the state after an attempt's result was recorded.
type outcome struct {
	accountLocked bool
	retryAfter    time.Duration
	ipThrottled   bool
}

// reportLoginResult finishes a reservation with its outcome. A second
// report of the same attempt changes nothing and returns the state.
func (s *Service) reportLoginResult(ctx context.Context, req *riskv1.ReportLoginResultRequest) (outcome, error) {
	tenantID, err := parseUUID("tenant_id", req.GetTenantId())
	if err != nil {
		return outcome{}, err
	}
	attemptID, err := parseUUID("attempt_id", req.GetAttemptId())
	if err != nil {
		return outcome{}, err
	}
	userID, err := optionalUUID("user_id", req.UserId)
	if err != nil {
		return outcome{}, err
	}
	// The attempt names its account and address; its outcome is changed
	// only under their locks, below.
	a, err := store.New(s.deps.Pool).GetAttempt(ctx, store.GetAttemptParams{TenantID: tenantID, ID: attemptID})
	if errors.Is(err, pgx.ErrNoRows) {
		return outcome{}, ErrAttemptNotFound
	}
	if err != nil {
		return outcome{}, fmt.Errorf("get attempt %s: %w", attemptID, err)
	}
	sub := subject{tenantID: tenantID, account: a.AccountKey, ip: a.Ip}
	o := overrides{lockout: req.GetLockoutPolicy(), ip: req.GetIpThrottlePolicy()}
	var out outcome
	err = pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		rows, err := lockRows(ctx, q, sub, s.clock())
		if err != nil {
			return err
		}
		p, err := s.policies(ctx, q, tenantID, o)
		if err != nil {
			return err
		}
		now := s.clock()
		n, err := q.FinishAttempt(ctx, store.FinishAttemptParams{TenantID: tenantID, ID: attemptID, Outcome: outcomeOf(req.GetSuccess()), Now: now})
		if err != nil {
			return fmt.Errorf("finish attempt %s: %w", attemptID, err)
		}
		if n == 0 { // reported before
			out, err = s.state(ctx, q, sub, rows, p, now)
			return err
		}
		out, err = s.recordOutcome(ctx, tx, sub, rows, req.GetSuccess(), userID, p, now)
		return err
	})
	if err != nil {
		return outcome{}, err
	}
	return out, nil
}

// recordLoginAttempt records a finished attempt that was not reserved.
func (s *Service) recordLoginAttempt(ctx context.Context, req *riskv1.RecordLoginAttemptRequest) (outcome, error) {
	sub, err := s.subjectOf(ctx, req.GetTenantId(), req.GetEmail(), req.GetIp())
	if err != nil {
		return outcome{}, err
	}
	userID, err := optionalUUID("user_id", req.UserId)
	if err != nil {
		return outcome{}, err
	}
	o := overrides{lockout: req.GetLockoutPolicy(), ip: req.GetIpThrottlePolicy()}
	var out outcome
	err = pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		rows, err := lockRows(ctx, q, sub, s.clock())
		if err != nil {
			return err
		}
		p, err := s.policies(ctx, q, sub.tenantID, o)
		if err != nil {
			return err
		}
		now := s.clock()
		if err := q.InsertAttempt(ctx, store.InsertAttemptParams{
			ID: uuid.Must(uuid.NewV7()), TenantID: sub.tenantID, AccountKey: sub.account, Ip: sub.ip,
			Outcome: outcomeOf(req.GetSuccess()), CreatedAt: now, ExpiresAt: now, FinishedAt: timestamptz(now),
		}); err != nil {
			return fmt.Errorf("record an attempt of account %s: %w", sub.accountID(), err)
		}
		out, err = s.recordOutcome(ctx, tx, sub, rows, req.GetSuccess(), userID, p, now)
		return err
	})
	if err != nil {
		return outcome{}, err
	}
	return out, nil
}

// recordOutcome applies a recorded result: a success clears the account's
// failures; a failure may lock the account and throttle the address.
func (s *Service) recordOutcome(ctx context.Context, tx pgx.Tx, sub subject, rows locked, success bool, userID pgtype.UUID,
	p policies, now time.Time,
) (outcome, error) {
	q := store.New(tx)
	if err := touch(ctx, q, sub, userID, now); err != nil {
		return outcome{}, err
	}
	if userID.Valid {
		rows.account.UserID = userID
	}
	if success {
		if err := q.ResetAccountFailures(ctx, store.ResetAccountFailuresParams{TenantID: sub.tenantID, AccountKey: sub.account, Now: now}); err != nil {
			return outcome{}, fmt.Errorf("reset failures of account %s: %w", sub.accountID(), err)
		}
		rows.account.FailuresResetAt = now
		return s.state(ctx, q, sub, rows, p, now)
	}
	if is, _ := lockedAt(rows.account.LockedUntil, now); !is {
		acct, err := s.accountCounts(ctx, q, sub, rows.account.FailuresResetAt, now, p.lockout.Window)
		if err != nil {
			return outcome{}, err
		}
		if acct.failures >= p.lockout.MaxFailures {
			if err := s.lockAccount(ctx, tx, sub, rows.account.UserID, acct.failures, p.lockout, now); err != nil {
				return outcome{}, err
			}
			rows.account.LockedUntil = timestamptz(now.Add(p.lockout.Duration))
		}
	}
	addr, err := s.addressCounts(ctx, q, sub, now, p.ip.Window)
	if err != nil {
		return outcome{}, err
	}
	throttled := rows.address.Valid && rows.address.Time.After(now)
	if addr.failures >= p.ip.MaxFailures && !throttled {
		if err := s.throttleAddress(ctx, tx, sub, addr.failures, p.ip, now); err != nil {
			return outcome{}, err
		}
	}
	return s.state(ctx, q, sub, rows, p, now)
}

// state reports whether the account is locked and the address throttled.
func (s *Service) state(ctx context.Context, q *store.Queries, sub subject, rows locked, p policies, now time.Time) (outcome, error) {
	var out outcome
	out.accountLocked, out.retryAfter = lockedAt(rows.account.LockedUntil, now)
	addr, err := s.addressCounts(ctx, q, sub, now, p.ip.Window)
	if err != nil {
		return outcome{}, err
	}
	out.ipThrottled = addr.failures >= p.ip.MaxFailures
	return out, nil
}

// lockAccount locks the account for the policy's duration and records
// risk.account.locked.
func (s *Service) lockAccount(ctx context.Context, tx pgx.Tx, sub subject, userID pgtype.UUID, failures int, p LockoutPolicy, now time.Time) error {
	until := now.Add(p.Duration)
	if err := store.New(tx).SetAccountLock(ctx, store.SetAccountLockParams{
		TenantID: sub.tenantID, AccountKey: sub.account, LockedUntil: timestamptz(until), Now: now,
	}); err != nil {
		return fmt.Errorf("lock account %s: %w", sub.accountID(), err)
	}
	s.deps.Logger.InfoContext(ctx, "account locked", "tenant_id", sub.tenantID, "account_id", sub.accountID(),
		"failures", failures, "locked_until", until)
	return s.append(ctx, tx, events.Aggregate{Type: aggregateAccount, ID: sub.accountID(), TenantID: sub.tenantID.String()},
		events.Change{Name: eventAccountLocked, Payload: &riskv1.AccountLocked{
			TenantId:    sub.tenantID.String(),
			AccountId:   sub.accountID(),
			UserId:      uuidString(userID),
			Failures:    int32(failures),
			LockedUntil: timestamppb.New(until),
			Policy: &riskv1.LockoutPolicy{
				MaxFailures: int32(p.MaxFailures), Window: durationpb.New(p.Window), LockoutDuration: durationpb.New(p.Duration),
			},
		}})
}

// throttleAddress records risk.ip.throttled, at most once per window.
func (s *Service) throttleAddress(ctx context.Context, tx pgx.Tx, sub subject, failures int, p IPThrottlePolicy, now time.Time) error {
	if err := store.New(tx).SetAddressThrottled(ctx, store.SetAddressThrottledParams{
		TenantID: sub.tenantID, Ip: sub.ip, ThrottledUntil: timestamptz(now.Add(p.Window)), Now: now,
	}); err != nil {
		return fmt.Errorf("throttle address %s: %w", sub.ipID(), err)
	}
	s.deps.Logger.WarnContext(ctx, "client address throttled", "tenant_id", sub.tenantID, "ip", sub.ip, "failures", failures)
	return s.append(ctx, tx, events.Aggregate{Type: aggregateIP, ID: sub.ipID(), TenantID: sub.tenantID.String()},
		events.Change{Name: eventIPThrottled, Payload: &riskv1.IpThrottled{
			TenantId: sub.tenantID.String(),
			Ip:       sub.ip,
			Failures: int32(failures),
			Policy:   &riskv1.IpThrottlePolicy{MaxFailures: int32(p.MaxFailures), Window: durationpb.New(p.Window)},
		}})
}

// unlockAccount lifts an account's lock and clears its failures; it records
// risk.account.unlocked when the account was locked.
func (s *Service) unlockAccount(ctx context.Context, req *riskv1.UnlockAccountRequest) (bool, error) {
	tenantID, err := parseUUID("tenant_id", req.GetTenantId())
	if err != nil {
		return false, err
	}
	key, err := s.accountKey(ctx, tenantID, req.GetEmail())
	if err != nil {
		return false, err
	}
	sub := subject{tenantID: tenantID, account: key}
	var wasLocked bool
	err = pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		acct, err := q.LockAccount(ctx, store.LockAccountParams{TenantID: tenantID, AccountKey: key})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // never attempted: nothing to unlock
		}
		if err != nil {
			return fmt.Errorf("lock account %s: %w", sub.accountID(), err)
		}
		now := s.clock()
		wasLocked, _ = lockedAt(acct.LockedUntil, now)
		if err := q.SetAccountLock(ctx, store.SetAccountLockParams{TenantID: tenantID, AccountKey: key, Now: now}); err != nil {
			return fmt.Errorf("unlock account %s: %w", sub.accountID(), err)
		}
		if !wasLocked {
			return nil
		}
		s.deps.Logger.InfoContext(ctx, "account unlocked", "tenant_id", tenantID, "account_id", sub.accountID())
		return s.append(ctx, tx, events.Aggregate{Type: aggregateAccount, ID: sub.accountID(), TenantID: tenantID.String()},
			events.Change{Name: eventAccountUnlocked, Payload: &riskv1.AccountUnlocked{
				TenantId:    tenantID.String(),
				AccountId:   sub.accountID(),
				UserId:      uuidString(acct.UserID),
				LockedUntil: timestamppb.New(acct.LockedUntil.Time),
			}})
	})
	if err != nil {
		return false, err
	}
	return wasLocked, nil
}

// append records one event of an aggregate whose row the caller has
// locked: the row lock serialises its writers, so the version read here
// stays current until commit.
func (s *Service) append(ctx context.Context, tx pgx.Tx, agg events.Aggregate, c events.Change) error {
	version, err := s.events.Version(ctx, tx, agg.ID)
	if err != nil {
		return err
	}
	_, err = s.events.Append(ctx, tx, agg, version, c)
	return err
}

// touch records that the account and the address were used now, and the
// account's user when known.
func touch(ctx context.Context, q *store.Queries, sub subject, userID pgtype.UUID, now time.Time) error {
	if err := q.TouchAccount(ctx, store.TouchAccountParams{TenantID: sub.tenantID, AccountKey: sub.account, UserID: userID, Now: now}); err != nil {
		return fmt.Errorf("touch account %s: %w", sub.accountID(), err)
	}
	if err := q.TouchAddress(ctx, store.TouchAddressParams{TenantID: sub.tenantID, Ip: sub.ip, Now: now}); err != nil {
		return fmt.Errorf("touch address %s: %w", sub.ipID(), err)
	}
	return nil
}

// clock returns the current time as PostgreSQL stores it.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func outcomeOf(success bool) string {
	if success {
		return outcomeSuccess
	}
	return outcomeFailure
}

// retryAfter rounds a wait up to whole seconds, at least one, as HTTP's
// Retry-After counts them.
func retryAfter(d time.Duration) *durationpb.Duration {
	secs := (d + time.Second - 1) / time.Second
	return durationpb.New(max(secs, 1) * time.Second)
}

func timestamptz(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: true} }

func optionalUUID(field string, s *string) (pgtype.UUID, error) {
	if s == nil {
		return pgtype.UUID{}, nil
	}
	id, err := parseUUID(field, *s)
	if err != nil {
		return pgtype.UUID{}, err
	}
	return pgtype.UUID{Bytes: id, Valid: true}, nil
}

func uuidString(id pgtype.UUID) string {
	if !id.Valid {
		return ""
	}
	return uuid.UUID(id.Bytes).String()
}
