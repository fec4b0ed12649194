// Package tenantevents reads the TENANT stream's events for the services
// that cache something of each tenant (identity and session its status,
// identity its password policy, risk its lockout policy, session its
// lifetimes): every such cache is fed by tenant.tenant.created, which
// carries the tenant whole, and by the events that change the part it
// keeps (one per policy; three for the status, see [Status]).
package tenantevents

import (
	"fmt"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/authms/authms/events"
	"github.com/authms/authms/projections"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
)

// Subjects of the events that carry a tenant's status.
const (
	SubjectCreated     = "tenant.tenant.created"
	SubjectUpdated     = "tenant.tenant.updated"
	SubjectSuspended   = "tenant.tenant.suspended"
	SubjectReactivated = "tenant.tenant.reactivated"
)

// StatusSubjects are the subjects [Status] reads: tenant.tenant.created,
// tenant.tenant.updated (which changed the status before SuspendTenant
// existed, and carries it unchanged since), tenant.tenant.suspended and
// tenant.tenant.reactivated.
var StatusSubjects = []string{SubjectCreated, SubjectUpdated, SubjectSuspended, SubjectReactivated}

// StatusHandlers is a projector's handler map applying apply to every one
// of StatusSubjects.
func StatusHandlers(apply projections.Apply) map[string]projections.Apply {
	handlers := make(map[string]projections.Apply, len(StatusSubjects))
	for _, subject := range StatusSubjects {
		handlers[subject] = apply
	}
	return handlers
}

// Status returns the tenant and the status ev leaves it in, for an event
// on one of StatusSubjects; any other is a permanent error.
func Status(ev events.Event) (uuid.UUID, tenantv1.TenantStatus, error) {
	switch ev.Subject() {
	case SubjectSuspended:
		return suspendedPart.Decode(ev)
	case SubjectReactivated:
		return reactivatedPart.Decode(ev)
	}
	return updatedPart.Decode(ev)
}

// The parts behind [Status].
var (
	updatedPart = Part[*tenantv1.TenantUpdated, tenantv1.TenantStatus]{
		Subject:     SubjectUpdated,
		New:         func() *tenantv1.TenantUpdated { return new(tenantv1.TenantUpdated) },
		FromCreated: (*tenantv1.TenantCreated).GetStatus,
		FromChange:  (*tenantv1.TenantUpdated).GetStatus,
	}
	suspendedPart = Part[*tenantv1.TenantSuspended, tenantv1.TenantStatus]{
		Subject:     SubjectSuspended,
		New:         func() *tenantv1.TenantSuspended { return new(tenantv1.TenantSuspended) },
		FromCreated: (*tenantv1.TenantCreated).GetStatus,
		FromChange: func(*tenantv1.TenantSuspended) tenantv1.TenantStatus {
			return tenantv1.TenantStatus_TENANT_STATUS_SUSPENDED
		},
	}
	reactivatedPart = Part[*tenantv1.TenantReactivated, tenantv1.TenantStatus]{
		Subject:     SubjectReactivated,
		New:         func() *tenantv1.TenantReactivated { return new(tenantv1.TenantReactivated) },
		FromCreated: (*tenantv1.TenantCreated).GetStatus,
		FromChange: func(*tenantv1.TenantReactivated) tenantv1.TenantStatus {
			return tenantv1.TenantStatus_TENANT_STATUS_ACTIVE
		},
	}
)

// Change is an event that changes one part of a tenant.
type Change interface {
	proto.Message
	GetTenantId() string
}

// Part says how to read one part of a tenant from the events that carry
// it: tenant.tenant.created, and the change event on Subject.
type Part[C Change, T any] struct {
	// Subject is the change event's subject, e.g.
	// "tenant.tenant.session_policy_changed".
	Subject string
	// New returns an empty change event to decode into.
	New func() C
	// FromCreated and FromChange pick the part out of either event.
	FromCreated func(*tenantv1.TenantCreated) T
	FromChange  func(C) T
}

// Decode returns the tenant and the part that ev carries. An event on
// another subject, or whose tenant id is not a UUID, is a permanent error:
// retrying it cannot help.
func (p Part[C, T]) Decode(ev events.Event) (uuid.UUID, T, error) {
	var (
		tenant string
		part   T
	)
	switch ev.Subject() {
	case SubjectCreated:
		var m tenantv1.TenantCreated
		if err := ev.Unmarshal(&m); err != nil {
			return uuid.Nil, part, err
		}
		tenant, part = m.GetTenantId(), p.FromCreated(&m)
	case p.Subject:
		m := p.New()
		if err := ev.Unmarshal(m); err != nil {
			return uuid.Nil, part, err
		}
		tenant, part = m.GetTenantId(), p.FromChange(m)
	default:
		return uuid.Nil, part, events.Permanent(fmt.Errorf("event %s: unexpected subject %s", ev.ID, ev.Subject()))
	}
	tenantID, err := uuid.Parse(tenant)
	if err != nil {
		return uuid.Nil, part, events.Permanent(fmt.Errorf("event %s: bad tenant_id %q", ev.ID, tenant))
	}
	return tenantID, part, nil
}
