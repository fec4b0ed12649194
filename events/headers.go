package events

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
)

// envelopeKeys interns the header names of the envelope, so decoding an
// outbox row allocates no key strings.
var envelopeKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{HeaderID, HeaderSource, HeaderType, HeaderSubject, HeaderTime, HeaderSpecVersion,
		HeaderDataSchema, HeaderContentType, HeaderTenant, HeaderAggregateType, HeaderAggregateVersion,
		HeaderCorrelationID, HeaderCausationID, HeaderTraceParent} {
		m[k] = k
	}
	return m
}()

// decodeHeaders parses an outbox row's headers, a flat JSON object of
// strings (Store.Append writes it with encoding/json, PostgreSQL returns it
// as jsonb text), into NATS headers. It is the relay's per-row cost, so it
// avoids encoding/json's reflection: a string with escapes is the only
// thing it hands to encoding/json. Anything but a flat object of strings is
// an error.
func decodeHeaders(b []byte) (nats.Header, error) {
	d := headerDecoder{b: b}
	d.space()
	if !d.consume('{') {
		return nil, d.fail("expected an object")
	}
	h := make(nats.Header, 16)
	// One backing array for the one-value slices of every header.
	values := make([]string, 0, 16)
	d.space()
	if d.consume('}') {
		return h, d.end()
	}
	for {
		d.space()
		key, err := d.str(true)
		if err != nil {
			return nil, err
		}
		d.space()
		if !d.consume(':') {
			return nil, d.fail("expected ':'")
		}
		d.space()
		value, err := d.str(false)
		if err != nil {
			return nil, err
		}
		if len(values) == cap(values) {
			values = make([]string, 0, 16)
		}
		values = append(values, value)
		h[key] = values[len(values)-1 : len(values) : len(values)]
		d.space()
		if d.consume(',') {
			continue
		}
		if d.consume('}') {
			return h, d.end()
		}
		return nil, d.fail("expected ',' or '}'")
	}
}

type headerDecoder struct {
	b []byte
	i int
}

func (d *headerDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *headerDecoder) consume(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *headerDecoder) end() error {
	d.space()
	if d.i != len(d.b) {
		return d.fail("data after the object")
	}
	return nil
}

func (d *headerDecoder) fail(msg string) error {
	return fmt.Errorf("headers: %s at offset %d", msg, d.i)
}

var errNotString = errors.New("headers: values must be strings")

// str reads a JSON string. Keys of the envelope come back interned.
func (d *headerDecoder) str(key bool) (string, error) {
	if !d.consume('"') {
		if key {
			return "", d.fail("expected a string key")
		}
		return "", errNotString
	}
	start, escaped := d.i, false
	for ; d.i < len(d.b); d.i++ {
		switch c := d.b[d.i]; {
		case c == '\\':
			escaped = true
			d.i++ // skip the escaped byte, which may be a quote
		case c == '"':
			raw := d.b[start:d.i]
			d.i++
			if escaped {
				var s string
				if err := json.Unmarshal(d.b[start-1:d.i], &s); err != nil {
					return "", fmt.Errorf("headers: %w", err)
				}
				return s, nil
			}
			if key {
				if k, ok := envelopeKeys[string(raw)]; ok {
					return k, nil
				}
			}
			return string(raw), nil
		case c < 0x20:
			return "", d.fail("control character in a string")
		}
	}
	return "", d.fail("unterminated string")
}
