// Package sample is the input of skipcheck's test: go test -json on it
// gives a pass, a skip, a failure and a skipped subtest.
package sample

import "testing"

func TestPass(t *testing.T) {}

func TestSkip(t *testing.T) {
	t.Log("probing the server")
	t.Skip("no server here")
}

func TestFail(t *testing.T) {
	t.Error("the value is wrong")
}

func TestParent(t *testing.T) {
	t.Run("child", func(t *testing.T) { t.Skipf("child %d skips", 1) })
	t.Run("sibling", func(t *testing.T) {})
}
