// Package breached is the breached-password list authms ships: the tenant
// service checks passwords against it for CheckPassword and identity for
// every password it sets, when the tenant's password policy asks for it.
// It lives here, not in either service, because services never import each
// other. breached_gen.go makes the list and says what it holds.
package breached

//go:generate go run breached_gen.go

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"slices"
	"strings"
)

// file is the list: lower case, sorted, one a line, "#" lines are comments.
//
//go:embed breached_passwords.txt
var file []byte

// List answers whether a password is on the shipped list.
type List struct {
	sorted []string
}

// Load parses the embedded list and checks that it is sorted, so a hand
// edit cannot silently break the binary search.
func Load() (*List, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(file))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("breached-password list: %w", err)
	}
	if !slices.IsSorted(out) {
		return nil, fmt.Errorf("breached-password list is not sorted; regenerate it with go generate")
	}
	return &List{sorted: out}, nil
}

// Contains reports whether password is on the list, ignoring case.
func (l *List) Contains(password string) bool {
	_, found := slices.BinarySearch(l.sorted, strings.ToLower(password))
	return found
}

// Len is the number of passwords on the list.
func (l *List) Len() int { return len(l.sorted) }
