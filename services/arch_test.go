package services_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/authms/authms"

// goPackage is what `go list -json` reports that the rules need.
type goPackage struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// goList runs `go list -deps -test -json` on patterns from the module root
// and returns the module's own packages (tests included).
func goList(t *testing.T, patterns ...string) []goPackage {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", append([]string{"list", "-deps", "-test", "-json"}, patterns...)...)
	cmd.Dir = ".." // the module root; tests run in the package directory
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		// -test adds "pkg [pkg.test]" variants, "pkg_test" external test
		// packages and "pkg.test" mains; the rules apply to pkg.
		p.ImportPath, _, _ = strings.Cut(p.ImportPath, " ")
		p.ImportPath = strings.TrimSuffix(p.ImportPath, "_test")
		if strings.HasSuffix(p.ImportPath, ".test") || !within(p.ImportPath, module) {
			continue
		}
		if i := slices.IndexFunc(pkgs, func(q goPackage) bool { return q.ImportPath == p.ImportPath }); i >= 0 {
			pkgs[i].Imports = slices.Concat(pkgs[i].Imports, p.Imports, p.TestImports, p.XTestImports)
			continue
		}
		pkgs = append(pkgs, p)
	}
	require.NotEmpty(t, pkgs)
	return pkgs
}

// within reports whether path is pkg or below it.
func within(path, pkg string) bool {
	return path == pkg || strings.HasPrefix(path, pkg+"/")
}

// imports returns every import of p, its tests' included, without the
// " [pkg.test]" suffixes -test adds.
func (p goPackage) imports() []string {
	var all []string
	for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
		imp, _, _ = strings.Cut(imp, " ")
		all = append(all, imp)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// serviceOf returns X for a package services/X/..., "" for others.
func serviceOf(path string) string {
	rest, ok := strings.CutPrefix(path, module+"/services/")
	if !ok {
		return ""
	}
	x, _, _ := strings.Cut(rest, "/")
	return x
}

// TestServicesDoNotImportEachOther enforces the isolation rule: a package
// under services/X imports nothing under services/Y, except the shared
// services/internal. The root package (the platform runner) and its test
// harness services/servicestest are the composition root and may import
// every service.
func TestServicesDoNotImportEachOther(t *testing.T) {
	t.Parallel()
	pkgs := goList(t, "./services/...")
	var checked int
	for _, p := range pkgs {
		x := serviceOf(p.ImportPath)
		if x == "" || x == "servicestest" {
			continue
		}
		checked++
		for _, imp := range p.imports() {
			y := serviceOf(imp)
			switch {
			case imp == module+"/services":
				// Only tests reach the runner, and only through servicestest.
				assert.Failf(t, "service imports the platform runner", "%s imports %s", p.ImportPath, imp)
			case y == "" || y == x || y == "internal" || y == "servicestest":
			default:
				assert.Failf(t, "service imports another service", "%s imports %s: services talk only through their APIs (schemas/gen) and events", p.ImportPath, imp)
			}
		}
		if x == "internal" {
			for _, imp := range p.imports() {
				if y := serviceOf(imp); y != "" && y != "internal" {
					assert.Failf(t, "shared code imports a service", "%s imports %s", p.ImportPath, imp)
				}
			}
		}
	}
	assert.Greater(t, checked, 4, "the rule saw the service packages")
}

// TestSpineDoesNotImportServices keeps the event spine (events/, projections/)
// below the services: it is shared by them and knows none of them.
func TestSpineDoesNotImportServices(t *testing.T) {
	t.Parallel()
	for _, p := range goList(t, "./events/...", "./projections/...") {
		for _, imp := range p.imports() {
			assert.Falsef(t, within(imp, module+"/services"), "%s imports %s", p.ImportPath, imp)
		}
		// -deps lists dependencies too: none of them may be a service either.
		assert.Falsef(t, within(p.ImportPath, module+"/services"),
			"events/ or projections/ depends on %s", p.ImportPath)
	}
}
