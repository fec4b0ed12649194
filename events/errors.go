package events

import "errors"

// ErrConcurrency reports that another command appended to the same aggregate
// first: the expected version was stale. Callers retry from a fresh load or
// return Aborted.
var ErrConcurrency = errors.New("aggregate changed concurrently")

// permanentError marks a handler error that no retry can fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as permanent: the consumer dead-letters the message at
// once instead of retrying it (an undecodable payload, a broken invariant).
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
