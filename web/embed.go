// Package web holds the browser console, built by Vite (`task web`) into
// dist/console and embedded in the authms binary, which serves it at "/"
// beside the APIs (services.Config.Console). The console is TypeScript
// calling the APIs with Connect-ES; this package only carries its built
// files. A binary built before the console (a fresh clone) embeds none,
// and authms then serves a page saying how to build it.
package web

import (
	"embed"
	"io/fs"
)

// dist is the build output. "all:" keeps dist/.gitkeep, committed so the
// pattern matches in a fresh clone with no console built, and Vite's files
// whose names start with "_" or ".".
//
//go:embed all:dist
var dist embed.FS

// Console returns the built console: index.html at its root and
// content-hashed files under assets/. Without a build it is empty.
func Console() fs.FS {
	sub, err := fs.Sub(dist, "dist/console")
	if err != nil {
		// fs.Sub fails only on an invalid path; "dist/console" is valid.
		panic(err)
	}
	return sub
}
