package identity

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"github.com/google/uuid"

	identityv1 "github.com/authms/authms/schemas/gen/authms/identity/v1"
	"github.com/authms/authms/services/identity/store"
	"github.com/authms/authms/services/internal/email"
	"github.com/authms/authms/services/internal/rpc"
)

// Page sizes of ListUsers; the schema caps page_size at maxUserPageSize.
const (
	defaultUserPageSize = 50
	maxUserPageSize     = 500
)

// userPageTokenVersion is the first byte of a ListUsers page token; a new
// token layout takes a new version, so old tokens are refused, not misread.
const userPageTokenVersion = 1

// errBadPageToken is a page token this service did not issue, or issued for
// another query.
var errBadPageToken = &rpc.InvalidFieldError{Field: "page_token", Rule: "page_token.valid",
	Message: "is not a next_page_token of a previous response with the same query"}

// userPageToken is the keyset cursor of ListUsers: the email_canonical of
// the last user of a page (unique per tenant, so it is a total order)
// and a digest of the query it belongs to. A token is opaque to clients
// but not secret: it holds an address the caller has just been shown.
type userPageToken struct {
	query string // the folded query
	after string // email_canonical of the last user listed
}

// queryDigest ties a token to its query without making the token carry
// the query: 8 bytes keep a token of the longest address under the
// schema's 512 characters.
func queryDigest(query string) []byte {
	sum := sha256.Sum256([]byte(query))
	return sum[:8]
}

func (t userPageToken) encode() string {
	b := make([]byte, 0, 1+8+len(t.after))
	b = append(b, userPageTokenVersion)
	b = append(b, queryDigest(t.query)...)
	b = append(b, t.after...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeUserPageToken reads a token issued for query; "" is the first page.
func decodeUserPageToken(s, query string) (userPageToken, error) {
	if s == "" {
		return userPageToken{query: query}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 1+8+1 || b[0] != userPageTokenVersion {
		return userPageToken{}, errBadPageToken
	}
	if string(b[1:9]) != string(queryDigest(query)) {
		return userPageToken{}, errBadPageToken
	}
	after := string(b[9:])
	if len(after) > email.MaxLength {
		return userPageToken{}, errBadPageToken
	}
	return userPageToken{query: query, after: after}, nil
}

// listUsers returns one page of a tenant's users in canonical email order
// and the token of the next page ("" after the last). It reads one row
// more than the page to know whether another page follows.
func (s *Service) listUsers(ctx context.Context, req *identityv1.ListUsersRequest) ([]*identityv1.User, string, error) {
	tenantID, err := uuid.Parse(req.GetTenantId())
	if err != nil {
		return nil, "", invalidTenant
	}
	query := email.Fold(req.GetQuery())
	token, err := decodeUserPageToken(req.GetPageToken(), query)
	if err != nil {
		return nil, "", err
	}
	size := int(req.GetPageSize())
	if size <= 0 {
		size = defaultUserPageSize
	}
	size = min(size, maxUserPageSize)
	q := store.New(s.deps.Pool)
	rows, err := q.ListUsers(ctx, store.ListUsersParams{
		TenantID: tenantID,
		After:    token.after,
		Query:    query,
		RowLimit: int32(size + 1),
	})
	if err != nil {
		return nil, "", fmt.Errorf("list users of tenant %s: %w", tenantID, err)
	}
	next := ""
	if len(rows) > size {
		rows = rows[:size]
		next = userPageToken{query: query, after: rows[size-1].EmailCanonical}.encode()
	}
	if len(rows) == 0 {
		return []*identityv1.User{}, "", nil
	}
	ids := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	roleRows, err := q.ListRolesOfUsers(ctx, store.ListRolesOfUsersParams{TenantID: tenantID, UserIds: ids})
	if err != nil {
		return nil, "", fmt.Errorf("roles of a page of users of tenant %s: %w", tenantID, err)
	}
	roles := make(map[uuid.UUID][]string, len(rows))
	for _, r := range roleRows {
		roles[r.UserID] = append(roles[r.UserID], r.RoleName)
	}
	users := make([]*identityv1.User, len(rows))
	for i, r := range rows {
		users[i] = userProto(r, roles[r.ID])
	}
	return users, next, nil
}
