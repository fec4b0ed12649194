// Package events is the event spine every authms service shares.
//
// A command appends its domain events to the service's events table and, in
// the same PostgreSQL transaction, to the outbox ([Store.Append]). The
// [Relay] publishes outbox rows in order to the service's JetStream stream
// (one stream per service, named after it in upper case, capturing
// "<service>.>") with Nats-Msg-Id set to the event id, and deletes them only
// after JetStream acknowledged them. Other services read those streams with
// durable pull consumers ([Consume]); a message that keeps failing, or fails
// permanently, is moved to the consuming service's dead-letter stream
// (DLQ_<SERVICE>, subjects "dlq.<service>.>") with headers that say why.
//
// On the wire an event is a NATS message whose payload is the protobuf
// encoding of the event message and whose headers carry the CloudEvents
// attributes in binary mode (ce-id, ce-source, ce-type, ce-subject, ce-time,
// ce-specversion, ce-dataschema) plus the authms extensions: tenant, aggregate
// type, aggregate version, correlation and causation ids, and W3C traceparent.
package events
