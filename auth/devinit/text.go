package devinit

import (
	"fmt"
	"io"
	"strings"

	"github.com/prism-data/prism/subjects"
)

// ParseUser reads a user as prism auth init --user gives it: NAME, or
// NAME:GROUP[+GROUP...].
func ParseUser(s string) User {
	name, groups, _ := strings.Cut(s, ":")
	u := User{Name: name}
	if groups != "" {
		u.Groups = strings.Split(groups, "+")
	}
	return u
}

// WriteText writes what Init wrote for people: the files, how to serve
// with them (dataDir is prism serve's --data-dir), and each user's TLS
// flags and inbox prefix.
func (r Result) WriteText(w io.Writer, dataDir string) error {
	fmt.Fprintf(w, "wrote %d files into %s (keep it private)\n", len(r.Files()), r.Dir)
	fmt.Fprintf(w, "\nserve with:\n  prism serve --data-dir %s --auth-config %s\n", dataDir, r.AuthConfig)
	for _, u := range r.Users {
		groups := "none"
		if len(u.Groups) > 0 {
			groups = strings.Join(u.Groups, ", ")
		}
		if _, err := fmt.Fprintf(w, "\n%s (groups: %s):\n  --tls-cert %s --tls-key %s --tls-ca %s\n  inbox prefix: %s\n",
			u.Name, groups, u.Cert, u.Key, r.CACert, subjects.InboxPrefix(u.Name)); err != nil {
			return err
		}
	}
	return nil
}
