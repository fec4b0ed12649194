package obs_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authms/authms/services/internal/obs"
)

func TestTracerProviderFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		on      bool
		wantErr string
	}{
		{name: "off by default", env: nil},
		{name: "none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}},
		{name: "disabled SDK wins", env: map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}},
		{name: "console", env: map[string]string{"OTEL_TRACES_EXPORTER": "console"}, on: true},
		{name: "otlp", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{name: "an OTLP endpoint alone turns otlp on", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, on: true},
		{name: "several", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp, console"}, on: true},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: `unsupported exporter "zipkin"`},
		{name: "grpc protocol", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, wantErr: `OTLP protocol "grpc"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tp, err := obs.TracerProviderFromEnv(t.Context(), func(k string) string { return tt.env[k] }, &bytes.Buffer{})
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			if !tt.on {
				assert.Nil(t, tp)
				return
			}
			require.NotNil(t, tp)
			// No span was started, so shutting down exports nothing and
			// needs no collector.
			assert.NoError(t, tp.Shutdown(context.Background()))
		})
	}
}

// The console exporter writes each span as JSON to stdout.
func TestConsoleExporterWritesSpans(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	env := map[string]string{"OTEL_TRACES_EXPORTER": "console"}
	tp, err := obs.TracerProviderFromEnv(t.Context(), func(k string) string { return env[k] }, &out)
	require.NoError(t, err)
	require.NotNil(t, tp)
	_, span := tp.Tracer("test").Start(t.Context(), "register user")
	span.End()
	require.NoError(t, tp.Shutdown(context.Background()))
	assert.Contains(t, out.String(), `"Name":"register user"`)
	if os.Getenv("OTEL_SERVICE_NAME") == "" && os.Getenv("OTEL_RESOURCE_ATTRIBUTES") == "" {
		assert.Contains(t, out.String(), `"Value":"authms"`, "the default service name")
	}
}
