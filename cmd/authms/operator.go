package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"

	"connectrpc.com/connect"

	"github.com/authms/authms/services"
)

// operatorToken returns the platform operator's token the admin API
// commands send: AUTHMS_OPERATOR_TOKEN, or the one `authms dev` keeps in
// its data directory (AUTHMS_DATA_DIR). It never creates one.
func (c *cli) operatorToken() (string, error) {
	if t := strings.TrimSpace(c.getenv("AUTHMS_OPERATOR_TOKEN")); t != "" {
		return t, nil
	}
	file := services.OperatorTokenFile(c.env("AUTHMS_DATA_DIR", defaultDataDir))
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil // the server answers unauthenticated; apiError says what to set
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// operatorAuth makes an admin API client send the operator token.
func (c *cli) operatorAuth() (connect.ClientOption, error) {
	token, err := c.operatorToken()
	if err != nil {
		return nil, err
	}
	return connect.WithInterceptors(operatorInterceptor(token)), nil
}

// operatorInterceptor sets the Authorization header of every call.
type operatorInterceptor string

func (t operatorInterceptor) set(h interface{ Set(string, string) }) {
	if t != "" {
		h.Set("Authorization", "Bearer "+string(t))
	}
}

func (t operatorInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		t.set(req.Header())
		return next(ctx, req)
	}
}

func (t operatorInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		t.set(conn.RequestHeader())
		return conn
	}
}

func (operatorInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
