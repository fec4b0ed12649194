package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// jsErrStreamSubjectOverlap is the JetStream API error code for a stream
// whose subjects overlap another stream's.
const jsErrStreamSubjectOverlap jetstream.ErrorCode = 10065

// StreamName is the JetStream stream of a service's events: "IDENTITY".
func StreamName(service string) string { return strings.ToUpper(service) }

// DLQStreamName is the dead-letter stream of a consuming service: "DLQ_BILLING".
func DLQStreamName(service string) string { return "DLQ_" + strings.ToUpper(service) }

// DLQSubject is where service dead-letters a message that arrived on subject.
func DLQSubject(service, subject string) string { return "dlq." + service + "." + subject }

// StreamConfig sets the limits of the streams EnsureStreams creates.
type StreamConfig struct {
	// Replicas is 1 in development and 3 in production.
	Replicas int
	// MaxAge bounds how long events are kept; 0 keeps them until other limits.
	MaxAge time.Duration
	// Duplicates is the de-duplication window for Nats-Msg-Id (default 2m).
	Duplicates time.Duration
}

func (c StreamConfig) withDefaults() StreamConfig {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Duplicates == 0 {
		c.Duplicates = 2 * time.Minute
	}
	return c
}

// EnsureStreams creates or updates the service's event stream and its
// dead-letter stream. It is idempotent; it fails with a clear error when
// another stream already captures the same subjects.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, service string, cfg StreamConfig) error {
	cfg = cfg.withDefaults()
	streams := []jetstream.StreamConfig{
		{
			Name:        StreamName(service),
			Description: "authms " + service + " domain events",
			Subjects:    []string{service + ".>"},
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			MaxAge:      cfg.MaxAge,
			Duplicates:  cfg.Duplicates,
			Discard:     jetstream.DiscardOld,
		},
		{
			Name:        DLQStreamName(service),
			Description: "authms " + service + " dead letters: messages its consumers could not handle",
			Subjects:    []string{"dlq." + service + ".>"},
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			Duplicates:  cfg.Duplicates,
		},
	}
	for _, sc := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrStreamSubjectOverlap {
				return fmt.Errorf("create stream %s: its subjects %v overlap a stream that already exists on this NATS server; remove that stream or point NATS_URL at another server: %w", sc.Name, sc.Subjects, err)
			}
			return fmt.Errorf("create stream %s: %w", sc.Name, err)
		}
	}
	return nil
}
