package authn

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/prism-data/prism/auth"
)

// maxGroups bounds the groups taken from one credential.
const maxGroups = 256

// principalFromClaims extracts the principal's name and groups from a
// token's verified claims (a JSON object): the name from userClaim (a
// non-empty string), the groups from groupsClaim (absent, null, a string or
// a list of strings). A claim is looked up by its exact name first, then as
// a dotted path into nested objects. Errors are refusals wrapping
// ErrMalformed or ErrBadIdentity; they name the claim, never its value.
func principalFromClaims(payload []byte, userClaim, groupsClaim string) (string, []string, error) {
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return "", nil, refuse(auth.ViaOIDC, ErrMalformed, "the token's claims are not a JSON object")
	}
	nv, ok := lookupClaim(claims, userClaim)
	name, isString := nv.(string)
	if !ok || !isString || name == "" {
		return "", nil, refuse(auth.ViaOIDC, ErrBadIdentity, "the token has no string claim %q to name the principal by (oidc username_claim)", userClaim)
	}
	if err := checkName(name); err != nil {
		return "", nil, refuse(auth.ViaOIDC, ErrBadIdentity, "the token's claim %q is not a usable name: %v", userClaim, err)
	}
	gv, ok := lookupClaim(claims, groupsClaim)
	if !ok || gv == nil {
		return name, nil, nil
	}
	var groups []string
	switch g := gv.(type) {
	case string:
		groups = []string{g}
	case []any:
		if len(g) > maxGroups {
			return "", nil, refuse(auth.ViaOIDC, ErrBadIdentity, "the token's claim %q lists more than %d groups", groupsClaim, maxGroups)
		}
		for _, e := range g {
			s, ok := e.(string)
			if !ok {
				return "", nil, refuse(auth.ViaOIDC, ErrBadIdentity, "the token's claim %q is not a list of strings (oidc groups_claim)", groupsClaim)
			}
			groups = append(groups, s)
		}
	default:
		return "", nil, refuse(auth.ViaOIDC, ErrBadIdentity, "the token's claim %q is neither a string nor a list of strings (oidc groups_claim)", groupsClaim)
	}
	for _, g := range groups {
		if err := checkLabel(g); err != nil {
			return "", nil, refuse(auth.ViaOIDC, ErrBadIdentity, "the token's claim %q holds an unusable group: %v", groupsClaim, err)
		}
	}
	return name, groups, nil
}

// lookupClaim finds claim name in claims: the exact key, else the dotted
// path through nested objects.
func lookupClaim(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	if !strings.Contains(name, ".") {
		return nil, false
	}
	var cur any = claims
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}
