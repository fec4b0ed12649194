package main

import (
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/authms/authms/events"
	// The event payload types register themselves, so Event.Payload can
	// decode every service's events. Add each new service's package here.
	_ "github.com/authms/authms/schemas/gen/authms/billing/v1"
	_ "github.com/authms/authms/schemas/gen/authms/identity/v1"
	_ "github.com/authms/authms/schemas/gen/authms/profile/v1"
	_ "github.com/authms/authms/schemas/gen/authms/risk/v1"
	_ "github.com/authms/authms/schemas/gen/authms/tenant/v1"
	_ "github.com/authms/authms/schemas/gen/authms/wallet/v1"
)

// tailLine is one line of `authms events tail`. Every key is always
// present (empty when the message is not a well-formed authms event), so
// jq filters stay simple; "error" appears only when something could not be
// decoded, and then "data" is the raw payload in standard base64.
type tailLine struct {
	Subject       string          `json:"subject"`
	Stream        string          `json:"stream"`
	Sequence      uint64          `json:"sequence"`
	Time          string          `json:"time"`
	ID            string          `json:"id"`
	Source        string          `json:"source"`
	Type          string          `json:"type"`
	AggregateID   string          `json:"aggregate_id"`
	TenantID      string          `json:"tenant_id"`
	Version       int64           `json:"version"`
	CorrelationID string          `json:"correlation_id"`
	CausationID   string          `json:"causation_id"`
	TraceParent   string          `json:"traceparent"`
	Data          json.RawMessage `json:"data"`
	Error         string          `json:"error,omitempty"`
}

// formatLine renders one stored message. "time" is the event's own time
// (ce-time); for a message that is not an authms event, the time JetStream
// stored it. A dead letter (on dlq.<service>.<subject>) is decoded through
// the original subject it carries in its headers.
func formatLine(m events.StoredMessage) []byte {
	line := tailLine{
		Subject:  m.Subject,
		Stream:   m.Stream,
		Sequence: m.Sequence,
		Time:     m.Stored.UTC().Format(time.RFC3339Nano),
	}
	raw := func(err error) []byte {
		line.Error = err.Error()
		line.Data, _ = json.Marshal(base64.StdEncoding.EncodeToString(m.Data))
		b, _ := json.Marshal(line)
		return b
	}
	ev, err := events.DecodeStored(m.Subject, m.Header, m.Data)
	if err != nil {
		return raw(err)
	}
	line.Time = ev.Time.UTC().Format(time.RFC3339Nano)
	line.ID = ev.ID.String()
	line.Source = m.Header.Get(events.HeaderSource)
	line.Type = ev.Type()
	line.AggregateID = ev.AggregateID
	line.TenantID = ev.TenantID
	line.Version = ev.Version
	line.CorrelationID = ev.CorrelationID
	line.CausationID = ev.CausationID
	line.TraceParent = ev.TraceParent
	payload, err := events.PayloadJSON(ev)
	if err != nil {
		return raw(err)
	}
	line.Data = payload
	b, err := json.Marshal(line)
	if err != nil {
		return raw(err)
	}
	return b
}
