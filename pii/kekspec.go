package pii

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrKEKSpec is returned for a KEK spec (--pii-kek) that is not
// file:PATH or awskms:KEY, or a KMS option that is not valid.
var ErrKEKSpec = errors.New("pii: bad key encryption key spec")

// maxKMSKeyLen is the longest KeyId KMS accepts.
const maxKMSKeyLen = 2048

// OpenKEK opens the KEK spec names:
//
//	file:PATH     a local key file (LoadFileKEK; development)
//	awskms:KEY    an AWS KMS key: key id, key ARN, alias/NAME or alias ARN
//	              (NewKMSKEK, configured by opts)
//
// Errors: ErrKEKSpec for any other spec (the error does not repeat the
// spec, which may be a key pasted by mistake), and those of LoadFileKEK
// and NewKMSKEK.
func OpenKEK(ctx context.Context, spec string, opts ...KMSOption) (KEK, error) {
	scheme, ref, err := parseKEKSpec(spec)
	if err != nil {
		return nil, err
	}
	if scheme == "file" {
		return LoadFileKEK(ref)
	}
	return NewKMSKEK(ctx, ref, opts...)
}

// parseKEKSpec splits spec into its scheme ("file" or "awskms") and the
// path or key it names, and checks the latter's form.
func parseKEKSpec(spec string) (scheme, ref string, err error) {
	scheme, ref, ok := strings.Cut(spec, ":")
	switch {
	case !ok || (scheme != "file" && scheme != "awskms"):
		return "", "", fmt.Errorf("%w: want file:PATH or awskms:KEY (a key id, key ARN, alias/NAME or alias ARN)", ErrKEKSpec)
	case scheme == "file":
		if ref == "" || strings.ContainsAny(ref, "\x00\n\r") {
			return "", "", fmt.Errorf("%w: file: wants the path of a key file", ErrKEKSpec)
		}
	default:
		if _, err := parseKMSKey(ref); err != nil {
			return "", "", err
		}
	}
	return scheme, ref, nil
}

// parseKMSKey checks that key has the form of a KMS KeyId (a key id, key
// ARN, alias/NAME or alias ARN) and returns the region of an ARN.
func parseKMSKey(key string) (region string, err error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: awskms:%s: %s; want a key id, key ARN, alias/NAME or alias ARN", ErrKEKSpec, key, why)
	}
	if key == "" || len(key) > maxKMSKeyLen {
		return bad("empty or too long")
	}
	for _, c := range key {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/_-:", c)) {
			return "", fmt.Errorf("%w: awskms: the key has a character a KMS key id cannot have", ErrKEKSpec)
		}
	}
	resource := key
	if strings.HasPrefix(key, "arn:") {
		// arn:PARTITION:kms:REGION:ACCOUNT:key/ID or :alias/NAME
		parts := strings.SplitN(key, ":", 6)
		if len(parts) != 6 || !strings.HasPrefix(parts[1], "aws") || parts[2] != "kms" || parts[3] == "" || len(parts[4]) != 12 || strings.Trim(parts[4], "0123456789") != "" {
			return bad("not a KMS ARN")
		}
		region, resource = parts[3], parts[5]
		if !strings.HasPrefix(resource, "key/") && !strings.HasPrefix(resource, "alias/") {
			return bad("an ARN names key/ID or alias/NAME")
		}
	} else if strings.Contains(key, ":") {
		return bad("a ':' outside an ARN")
	}
	if name, ok := strings.CutPrefix(resource, "alias/"); ok && (name == "" || strings.HasPrefix(name, "aws/")) {
		return bad("an alias wants a name, not an AWS managed key")
	}
	if id, ok := strings.CutPrefix(resource, "key/"); ok && (id == "" || strings.Contains(id, "/")) {
		return bad("a key ARN wants a key id")
	}
	return region, nil
}
