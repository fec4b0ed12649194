package services

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// ConsoleConfigPath is where the console reads its settings from the
// server that serves it (ConsoleConfig, as JSON).
const ConsoleConfigPath = "/console/config.json"

// consoleCSP is the Content-Security-Policy of every console response: the
// console loads its scripts, styles and images from its own origin only and
// calls only the APIs of that origin, no page may frame it (clickjacking),
// and an injected <base> or plugin cannot redirect what it loads.
const consoleCSP = "default-src 'self'; connect-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'"

// ConsoleConfig is what the console learns from its server at
// [ConsoleConfigPath].
type ConsoleConfig struct {
	// Tenant is the tenant the console signs in to unless the user picks
	// another; nil leaves the choice to the user.
	Tenant *ConsoleTenant `json:"tenant,omitempty"`
}

// ConsoleTenant names a tenant for the console.
type ConsoleTenant struct {
	ID   string `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// SetConsoleConfig replaces what [ConsoleConfigPath] answers; `authms dev`
// sets its bootstrap tenant once it exists. Until then it answers {}.
func (p *Platform) SetConsoleConfig(c ConsoleConfig) { p.consoleConfig.Store(&c) }

// consoleFile is a file of the built console, read once at start.
type consoleFile struct {
	body        []byte
	etag        string
	contentType string
}

// console serves the browser console's static files, and index.html for
// every other GET path, so the console's own routes (/admin/users) load it
// on a reload or from a bookmark. It never answers for an API path: those
// the mux routes first, and the ones of services that do not run here
// (/authms.billing.v1.BillingService/...) are 404, never a page.
type console struct {
	files  map[string]consoleFile // by path without the leading slash
	config func() ConsoleConfig
}

// newConsole reads the console's files from fsys. An fsys without
// index.html (a build without `task web`) is served as a page that says
// how to build the console.
func newConsole(fsys fs.FS, config func() ConsoleConfig) (*console, error) {
	c := &console{files: map[string]consoleFile{}, config: config}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			if name == "." && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll // no console built
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		c.files[name] = consoleFile{
			body:        body,
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`,
			contentType: contentType(name),
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("console: read its files: %w", err)
	}
	return c, nil
}

// contentType returns the media type of a console file by its extension.
// Files are never sniffed (nosniff): an unknown extension is
// application/octet-stream.
func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	switch ext {
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".map", ".json":
		return "application/json"
	case ".webmanifest":
		return "application/manifest+json"
	case ".woff2":
		return "font/woff2"
	case ".woff":
		return "font/woff"
	case ".ico":
		return "image/x-icon"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// reservedPath reports whether p belongs to the APIs: a Connect or gRPC
// procedure (/authms.<service>.v1.<Service>/..., /grpc.health.v1.Health/...)
// or a well-known URI (the JWKS).
func reservedPath(p string) bool {
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return strings.HasPrefix(first, "authms.") || strings.HasPrefix(first, "grpc.") || first == ".well-known" || p == MetricsPath
}

func (c *console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if reservedPath(r.URL.Path) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if r.URL.Path == ConsoleConfigPath {
		c.serveConfig(w, r)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if f, ok := c.files[name]; ok && name != "index.html" {
		if strings.HasPrefix(name, "assets/") {
			// Vite names every file under assets/ by a hash of its
			// content: a new build has new names, so a name never changes
			// meaning.
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		serveFile(w, r, name, f)
		return
	}
	if strings.HasPrefix(name, "assets/") {
		// A missing script must not load as HTML.
		http.NotFound(w, r)
		return
	}
	// The page always revalidates, so a new build takes effect at once.
	h.Set("Cache-Control", "no-cache")
	if index, ok := c.files["index.html"]; ok {
		serveFile(w, r, "index.html", index)
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte(notBuiltPage))
	}
}

// serveFile answers with f, honouring HEAD, If-None-Match and Range.
func serveFile(w http.ResponseWriter, r *http.Request, name string, f consoleFile) {
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("ETag", f.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
}

// serveConfig answers ConsoleConfigPath.
func (c *console) serveConfig(w http.ResponseWriter, r *http.Request) {
	body, err := json.Marshal(c.config())
	if err != nil {
		http.Error(w, "console configuration unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	http.ServeContent(w, r, "config.json", time.Time{}, bytes.NewReader(body))
}

// notBuiltPage is the console's place when the binary was built without
// it, so `authms dev` still says what to do at its address.
const notBuiltPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>authms console not built</title></head>
<body>
<h1>The authms console is not built</h1>
<p>This binary was built without the web console. The APIs work as usual on this port.</p>
<p>To build the console, run <code>task web</code> (it needs Node.js), then rebuild and restart authms
(<code>task dev</code>).</p>
</body>
</html>
`
