// Package tenantevents reads the TENANT stream's events for the services
// that cache something of each tenant (identity its status and password
// policy, risk its lockout policy, session its lifetimes): every such cache
// is fed by tenant.tenant.created, which carries the tenant whole, and by
// the one event that changes the part it keeps.
package tenantevents

import (
	"fmt"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/authms/authms/events"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
)

// SubjectCreated is the subject of tenant.tenant.created.
const SubjectCreated = "tenant.tenant.created"

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
