package namespaces

import (
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// WriteText prints the dead letters as a table, oldest first.
func (l DLQListReply) WriteText(out io.Writer) error {
	if len(l.DeadLetters) == 0 {
		_, err := fmt.Fprintf(out, "namespace %s has no dead letters\n", l.Name)
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tSTREAM SEQ\tTARGET\tTIME\tSUBJECT\tREASON")
	for _, d := range l.DeadLetters {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\n", d.Seq, d.StreamSeq, d.Target, d.Time.Format(time.RFC3339), d.Subject, shorten(d.Reason, 100))
	}
	fmt.Fprintf(tw, "%d dead letters; prism dlq show %s SEQ shows one with its event\n", len(l.DeadLetters), l.Name)
	return tw.Flush()
}

// shorten cuts s to n runes.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// WriteText prints the dead letter, its event's headers and payload (as
// text when it is, else base64: PII fields are ciphertext either way).
func (d DeadLetterEvent) WriteText(out io.Writer) error {
	fmt.Fprintf(out, "dead letter %d of target %s, %s\n", d.Seq, d.Target, d.Time.Format(time.RFC3339Nano))
	fmt.Fprintf(out, "event:   stream seq %d, subject %s\nreason:  %s\nheaders:\n", d.StreamSeq, d.Subject, d.Reason)
	for _, k := range slices.Sorted(maps.Keys(d.Headers)) {
		fmt.Fprintf(out, "  %s: %s\n", k, strings.Join(d.Headers[k], ", "))
	}
	if utf8.Valid(d.Data) && !slices.ContainsFunc(d.Data, func(b byte) bool { return b < 0x20 && b != '\n' && b != '\t' }) {
		_, err := fmt.Fprintf(out, "payload (%d bytes):\n%s\n", len(d.Data), d.Data)
		return err
	}
	_, err := fmt.Fprintf(out, "payload (%d bytes, base64):\n%s\n", len(d.Data), base64.StdEncoding.EncodeToString(d.Data))
	return err
}

// WriteText prints what became of each dead letter and a summary.
func (r DLQRedriveReply) WriteText(out io.Writer) error {
	counts := map[string]int{}
	for _, x := range r.Redriven {
		counts[x.Outcome]++
		switch x.Outcome {
		case RedriveFailedAgain:
			fmt.Fprintf(out, "dead letter %d (stream seq %d, %s): refused again, now dead letter %d: %s\n", x.Seq, x.StreamSeq, x.Target, x.NewSeq, x.NewReason)
		case RedrivePublished:
			fmt.Fprintf(out, "dead letter %d (stream seq %d, %s): republished as %v, not applied yet (see the target's lag)\n", x.Seq, x.StreamSeq, x.Target, x.Republished)
		case RedriveRefused:
			fmt.Fprintf(out, "dead letter %d (stream seq %d, %s): not redriven, kept: %s\n", x.Seq, x.StreamSeq, x.Target, x.Detail)
		case RedriveSuperseded:
			fmt.Fprintf(out, "dead letter %d (stream seq %d, %s): superseded, the stream no longer holds its record's events\n", x.Seq, x.StreamSeq, x.Target)
		}
	}
	_, err := fmt.Fprintf(out, "namespace %s: %d redriven (%d applied, %d not yet, %d refused again, %d superseded), %d kept; %d dead letters left\n",
		r.Name, len(r.Redriven)-counts[RedriveRefused], counts[RedriveApplied], counts[RedrivePublished], counts[RedriveFailedAgain], counts[RedriveSuperseded], counts[RedriveRefused], r.Remaining)
	return err
}

// WriteText prints how many dead letters were dropped.
func (r DLQDropReply) WriteText(out io.Writer) error {
	_, err := fmt.Fprintf(out, "namespace %s: dropped %d dead letters; %d left\n", r.Name, len(r.Dropped), r.Remaining)
	return err
}
