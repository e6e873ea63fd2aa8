// Package empty has a test the -run pattern of skipcheck's test does not
// match.
package empty

import "testing"

func TestOther(t *testing.T) {}
