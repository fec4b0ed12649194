package main

import (
	"fmt"
	"log/slog"
)

// logger returns the process logger: text on a terminal, JSON otherwise,
// unless AUTHMS_LOG_FORMAT says which; level from AUTHMS_LOG_LEVEL (info).
func (c *cli) logger() (*slog.Logger, error) {
	var level slog.Level
	if s := c.getenv("AUTHMS_LOG_LEVEL"); s != "" {
		if err := level.UnmarshalText([]byte(s)); err != nil {
			return nil, fmt.Errorf("AUTHMS_LOG_LEVEL=%q: want debug, info, warn or error", s)
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	format := c.getenv("AUTHMS_LOG_FORMAT")
	if format == "" {
		format = "json"
		if c.stderrIsTerminal {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(c.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(c.stderr, opts)), nil
	default:
		return nil, fmt.Errorf("AUTHMS_LOG_FORMAT=%q: want text or json", format)
	}
}
