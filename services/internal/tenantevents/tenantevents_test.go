package tenantevents_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/authms/authms/events"
	tenantv1 "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	"github.com/authms/authms/services/internal/tenantevents"
)

var statusPart = tenantevents.Part[*tenantv1.TenantUpdated, tenantv1.TenantStatus]{
	Subject:     "tenant.tenant.updated",
	New:         func() *tenantv1.TenantUpdated { return new(tenantv1.TenantUpdated) },
	FromCreated: (*tenantv1.TenantCreated).GetStatus,
	FromChange:  (*tenantv1.TenantUpdated).GetStatus,
}

func tenantEvent(t *testing.T, name string, payload proto.Message) events.Event {
	t.Helper()
	data, err := proto.Marshal(payload)
	require.NoError(t, err)
	return events.Event{
		ID: uuid.New(), Service: "tenant", AggregateType: "tenant", Name: name, Version: 1,
		MessageName: payload.ProtoReflect().Descriptor().FullName(), Data: data,
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	tests := []struct {
		name      string
		ev        events.Event
		want      tenantv1.TenantStatus
		permanent bool
	}{
		{
			name: "created",
			ev:   tenantEvent(t, "created", &tenantv1.TenantCreated{TenantId: tenant.String(), Status: tenantv1.TenantStatus_TENANT_STATUS_ACTIVE}),
			want: tenantv1.TenantStatus_TENANT_STATUS_ACTIVE,
		},
		{
			name: "the part's change event",
			ev:   tenantEvent(t, "updated", &tenantv1.TenantUpdated{TenantId: tenant.String(), Status: tenantv1.TenantStatus_TENANT_STATUS_SUSPENDED}),
			want: tenantv1.TenantStatus_TENANT_STATUS_SUSPENDED,
		},
		{
			name:      "another subject",
			ev:        tenantEvent(t, "branding_changed", &tenantv1.BrandingChanged{TenantId: tenant.String()}),
			permanent: true,
		},
		{
			name:      "a tenant id that is not a UUID",
			ev:        tenantEvent(t, "updated", &tenantv1.TenantUpdated{TenantId: "acme"}),
			permanent: true,
		},
		{
			name:      "a payload of the wrong type",
			ev:        tenantEvent(t, "updated", &tenantv1.TenantCreated{TenantId: tenant.String()}),
			permanent: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, status, err := statusPart.Decode(tt.ev)
			if tt.permanent {
				require.Error(t, err)
				assert.True(t, events.IsPermanent(err), "%v is permanent", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tenant, got)
			assert.Equal(t, tt.want, status)
		})
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	id := tenant.String()
	for _, tt := range []struct {
		name string
		ev   events.Event
		want tenantv1.TenantStatus
	}{
		{"created", tenantEvent(t, "created", &tenantv1.TenantCreated{TenantId: id, Status: tenantv1.TenantStatus_TENANT_STATUS_ACTIVE}), tenantv1.TenantStatus_TENANT_STATUS_ACTIVE},
		{"updated, as before SuspendTenant", tenantEvent(t, "updated", &tenantv1.TenantUpdated{TenantId: id, Status: tenantv1.TenantStatus_TENANT_STATUS_SUSPENDED}), tenantv1.TenantStatus_TENANT_STATUS_SUSPENDED},
		{"suspended", tenantEvent(t, "suspended", &tenantv1.TenantSuspended{TenantId: id}), tenantv1.TenantStatus_TENANT_STATUS_SUSPENDED},
		{"reactivated", tenantEvent(t, "reactivated", &tenantv1.TenantReactivated{TenantId: id}), tenantv1.TenantStatus_TENANT_STATUS_ACTIVE},
	} {
		got, status, err := tenantevents.Status(tt.ev)
		require.NoError(t, err, tt.name)
		assert.Equal(t, tenant, got, tt.name)
		assert.Equal(t, tt.want, status, tt.name)
	}
	for _, ev := range []events.Event{
		tenantEvent(t, "branding_changed", &tenantv1.BrandingChanged{TenantId: id}),
		tenantEvent(t, "suspended", &tenantv1.TenantSuspended{TenantId: "acme"}),
		tenantEvent(t, "reactivated", &tenantv1.DomainAdded{TenantId: id, Domain: "example.com"}),
	} {
		_, _, err := tenantevents.Status(ev)
		assert.True(t, events.IsPermanent(err), "%s: %v is permanent", ev.Subject(), err)
	}
}
