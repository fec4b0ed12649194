package events

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodeHeaders(t *testing.T) {
	t.Parallel()
	ev := Event{ID: uuid.Must(uuid.NewV7()), Service: "orders", AggregateType: "order", AggregateID: "o-1", Name: "placed",
		TypeVersion: 1, TenantID: "t-1", Version: 3, Time: time.Now().UTC(), CorrelationID: "c-1",
		TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", MessageName: "google.protobuf.StringValue"}
	envelope, err := json.Marshal(ev.Headers())
	require.NoError(t, err)

	tests := []struct {
		name string
		in   string
		want nats.Header
	}{
		{name: "the envelope as Store.Append writes it", in: string(envelope), want: toHeader(ev.Headers())},
		{name: "jsonb output spacing", in: ` { "ce-id" : "a", "x": "b" } `, want: nats.Header{"ce-id": {"a"}, "x": {"b"}}},
		{name: "empty object", in: `{}`, want: nats.Header{}},
		{name: "empty value", in: `{"a":""}`, want: nats.Header{"a": {""}}},
		{name: "escapes", in: `{"k\"ey":"a\\b \"q\" \u00e9 \u003c\/ \ud83d\ude00"}`, want: nats.Header{`k"ey`: {`a\b "q" é </ 😀`}}},
		{name: "escaped quote at the end", in: `{"a":"\""}`, want: nats.Header{"a": {`"`}}},
		{name: "non-ASCII without escapes", in: `{"a":"ünïcode"}`, want: nats.Header{"a": {"ünïcode"}}},
		{name: "more than sixteen headers", in: manyHeaders(20), want: manyHeadersWant(20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeHeaders([]byte(tt.in))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			var std map[string]string
			require.NoError(t, json.Unmarshal([]byte(tt.in), &std), "the input is valid JSON")
			assert.Equal(t, toHeader(std), got, "as encoding/json decodes it")
		})
	}
}

func TestDecodeHeadersRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{``, `[]`, `{`, `{"a"}`, `{"a":1}`, `{"a":null}`, `{"a":"b",}`, `{"a":"b"} x`,
		`{"a":"b" "c":"d"}`, `{"a":"unterminated}`, "{\"a\":\"\x01\"}", `{"a":"\x"}`, `{a:"b"}`} {
		_, err := decodeHeaders([]byte(in))
		assert.Error(t, err, "%q", in)
	}
}

func toHeader(m map[string]string) nats.Header {
	h := nats.Header{}
	for k, v := range m {
		h[k] = []string{v}
	}
	return h
}

func manyHeaders(n int) string {
	m := map[string]string{}
	for i := range n {
		m[string(rune('a'+i))] = string(rune('A' + i))
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func manyHeadersWant(n int) nats.Header {
	h := nats.Header{}
	for i := range n {
		h[string(rune('a'+i))] = []string{string(rune('A' + i))}
	}
	return h
}

func BenchmarkDecodeHeaders(b *testing.B) {
	ev := Event{ID: uuid.Must(uuid.NewV7()), Service: "orders", AggregateType: "order", AggregateID: uuid.NewString(), Name: "placed",
		TypeVersion: 1, TenantID: uuid.NewString(), Version: 1, Time: time.Now().UTC(), CorrelationID: uuid.NewString(),
		TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", MessageName: "google.protobuf.StringValue"}
	in, err := json.Marshal(ev.Headers())
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeHeaders(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeHeadersJSON(b *testing.B) {
	ev := Event{ID: uuid.Must(uuid.NewV7()), Service: "orders", AggregateType: "order", AggregateID: uuid.NewString(), Name: "placed",
		TypeVersion: 1, TenantID: uuid.NewString(), Version: 1, Time: time.Now().UTC(), CorrelationID: uuid.NewString(),
		TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", MessageName: "google.protobuf.StringValue"}
	in, err := json.Marshal(ev.Headers())
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		var m map[string]string
		if err := json.Unmarshal(in, &m); err != nil {
			b.Fatal(err)
		}
		h := nats.Header{}
		for k, v := range m {
			h.Set(k, v)
		}
	}
}
