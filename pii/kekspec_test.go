package pii

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseKEKSpec: any input either parses into a known scheme and a
// reference that together are the input, or fails with ErrKEKSpec
// without repeating an input that has no known scheme.
func FuzzParseKEKSpec(f *testing.F) {
	for _, s := range []string{
		"file:/etc/prism/kek", "file:", "awskms:alias/prism", "awskms:1234abcd-12ab-34cd-56ef-1234567890ab",
		"awskms:arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"awskms:arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/prism", "awskms:mrk-1234abcd12ab34cd56ef1234567890ab",
		"awskms:arn:aws:kms:::key/x", "vault:x", "", ":", "awskms:alias/aws/ebs", strings.Repeat("ab", 32),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		scheme, ref, err := parseKEKSpec(spec)
		if err != nil {
			if !errors.Is(err, ErrKEKSpec) {
				t.Fatalf("%q: %v is not ErrKEKSpec", spec, err)
			}
			if scheme != "" || ref != "" {
				t.Fatalf("%q: an error with a result %q %q", spec, scheme, ref)
			}
			if !strings.HasPrefix(spec, "file:") && !strings.HasPrefix(spec, "awskms:") && len(spec) > 8 && strings.Contains(err.Error(), spec) {
				t.Fatalf("the error repeats a spec of no known scheme: %v", err)
			}
			return
		}
		if scheme != "file" && scheme != "awskms" || ref == "" || scheme+":"+ref != spec {
			t.Fatalf("%q parsed to %q %q", spec, scheme, ref)
		}
		if scheme == "awskms" {
			region, err := parseKMSKey(ref)
			if err != nil {
				t.Fatalf("%q: the key parsed once and not again: %v", spec, err)
			}
			if strings.HasPrefix(ref, "arn:") != (region != "") {
				t.Fatalf("%q: region %q", spec, region)
			}
			if strings.ContainsAny(ref, " \t\n\x00") {
				t.Fatalf("%q: accepted a key with whitespace", spec)
			}
		}
	})
}

func TestParseKEKSpec(t *testing.T) {
	for _, tc := range []struct {
		spec, scheme, region string
		wantErr              bool
	}{
		{"file:/k", "file", "", false},
		{"awskms:alias/prism", "awskms", "", false},
		{"awskms:arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "awskms", "eu-west-1", false},
		{"awskms:arn:aws:kms:eu-west-1:111122223333:alias/prism", "awskms", "eu-west-1", false},
		{"awskms:arn:aws:kms:eu-west-1:11112222333:key/x", "", "", true},
		{"awskms:arn:aws:kms:eu-west-1:111122223333:key/", "", "", true},
		{"awskms:arn:aws:kms:eu-west-1:111122223333:grant/x", "", "", true},
		{"awskms:key:x", "", "", true},
		{"awskms:alias/", "", "", true},
		{"File:/k", "", "", true},
	} {
		scheme, ref, err := parseKEKSpec(tc.spec)
		if (err != nil) != tc.wantErr || scheme != tc.scheme {
			t.Fatalf("parseKEKSpec(%q) = %q, %q, %v", tc.spec, scheme, ref, err)
		}
		if err == nil && scheme == "awskms" {
			if region, _ := parseKMSKey(ref); region != tc.region {
				t.Fatalf("%q: region %q, want %q", tc.spec, region, tc.region)
			}
		}
	}
}
