package replay

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// Report is the result of Verify. It holds counts and ids, never values
// (they may be personal data). Its JSON form is the fields' json names
// plus "passed".
type Report struct {
	// Checkpoint is the stream sequence both targets had reached when the
	// scan started: the state the comparison is at, apart from the live
	// writes that landed during it (see Verify).
	Checkpoint uint64 `json:"checkpoint"`
	// OldRecords and NewRecords are the records the scan read from each
	// target.
	OldRecords int64 `json:"old_records"`
	NewRecords int64 `json:"new_records"`
	// Compared is the number of distinct ids compared: Matched + Missing +
	// Extra + Differing + Unsettled.
	Compared int64 `json:"compared"`
	// Matched records are the same on both targets: items and revision.
	Matched int64 `json:"matched"`
	// Missing records are in the old target, not in the new one.
	Missing int64 `json:"missing"`
	// Extra records are in the new target, not in the old one.
	Extra int64 `json:"extra"`
	// Differing records are on both with different items or revisions.
	Differing int64 `json:"differing"`
	// Unsettled records differed in every read, but writes applied to one
	// target and not yet to the other could explain each difference:
	// neither proven equal nor proven different.
	Unsettled int64 `json:"unsettled"`
	// Rechecked is the number of records read again after the scan, and
	// RecheckRounds the number of rounds that took.
	Rechecked     int64 `json:"rechecked"`
	RecheckRounds int   `json:"recheck_rounds"`
	// Ranges is the number of checksum ranges compared; RangesMismatched
	// of them were compared record by record.
	Ranges           int64 `json:"ranges"`
	RangesMismatched int64 `json:"ranges_mismatched"`
	// Duration is how long Verify ran.
	Duration time.Duration `json:"duration_ns"`
	// MissingIDs, ExtraIDs, DifferingIDs and UnsettledIDs are the smallest
	// ids of each kind (WithSampleIDs of them), formatted by FormatID.
	MissingIDs   []string `json:"missing_ids"`
	ExtraIDs     []string `json:"extra_ids"`
	DifferingIDs []string `json:"differing_ids"`
	UnsettledIDs []string `json:"unsettled_ids"`
}

// Passed reports whether the targets were proven to hold the same
// records: nothing missing, extra, differing or unsettled.
func (r Report) Passed() bool {
	return r.Missing == 0 && r.Extra == 0 && r.Differing == 0 && r.Unsettled == 0
}

// MarshalJSON adds "passed" (Passed) to the fields.
func (r Report) MarshalJSON() ([]byte, error) {
	type fields Report // without this method
	return json.Marshal(struct {
		Passed bool `json:"passed"`
		fields
	}{r.Passed(), fields(r)})
}

// hexPrefix marks an id that FormatID wrote in hex.
const hexPrefix = "hex:"

// FormatID returns id as a report shows it: as it is when it is non-empty
// UTF-8 made of printable characters other than spaces and does not start
// with "hex:", otherwise "hex:" followed by its bytes in hex ("hex:" alone
// for the empty id). Two ids never share a form.
func FormatID(id []byte) string {
	if len(id) == 0 || !utf8.Valid(id) || bytes.HasPrefix(id, []byte(hexPrefix)) ||
		bytes.ContainsFunc(id, func(r rune) bool { return !unicode.IsGraphic(r) || unicode.IsSpace(r) }) {
		return hexPrefix + hex.EncodeToString(id)
	}
	return string(id)
}

// WriteTable writes the report as a small aligned table, like VDiff's
// summary: the result, the checkpoint, the counts and, beside each kind of
// difference, its first ids.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	result := "PASSED"
	if !r.Passed() {
		result = "FAILED"
	}
	rows := [][2]string{
		{"Result", result},
		{"Checkpoint", fmt.Sprint(r.Checkpoint)},
		{"Duration", r.Duration.Round(time.Millisecond).String()},
		{"Records (old / new)", fmt.Sprintf("%d / %d", r.OldRecords, r.NewRecords)},
		{"Compared", fmt.Sprint(r.Compared)},
		{"Matched", fmt.Sprint(r.Matched)},
		{"Missing", countAndIDs(r.Missing, r.MissingIDs)},
		{"Extra", countAndIDs(r.Extra, r.ExtraIDs)},
		{"Differing", countAndIDs(r.Differing, r.DifferingIDs)},
		{"Unsettled", countAndIDs(r.Unsettled, r.UnsettledIDs)},
		{"Rechecked", fmt.Sprintf("%d in %d rounds", r.Rechecked, r.RecheckRounds)},
		{"Ranges (mismatched)", fmt.Sprintf("%d (%d)", r.Ranges, r.RangesMismatched)},
	}
	for _, row := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}

func countAndIDs(n int64, ids []string) string {
	s := fmt.Sprint(n)
	if len(ids) == 0 {
		return s
	}
	s += "\t" + strings.Join(ids, " ")
	if int64(len(ids)) < n {
		s += " …"
	}
	return s
}

// idSample keeps the n smallest ids added.
type idSample struct {
	n   int
	ids [][]byte
}

func (s *idSample) add(id []byte) {
	i, found := slices.BinarySearchFunc(s.ids, id, bytes.Compare)
	if found || i >= s.n {
		return
	}
	s.ids = slices.Insert(s.ids, i, slices.Clone(id))
	if len(s.ids) > s.n {
		s.ids = s.ids[:s.n]
	}
}

func (s *idSample) strings() []string {
	out := make([]string, len(s.ids))
	for i, id := range s.ids {
		out[i] = FormatID(id)
	}
	return out
}

func (v *verifier) report() Report {
	return Report{
		Checkpoint:       v.checkpoint,
		OldRecords:       v.oldRecords,
		NewRecords:       v.newRecords,
		Compared:         v.compared,
		Matched:          v.matched,
		Missing:          v.nMissing,
		Extra:            v.nExtra,
		Differing:        v.nDiffering,
		Unsettled:        v.nUnset,
		Rechecked:        v.rechecked,
		RecheckRounds:    v.rounds,
		Ranges:           v.ranges,
		RangesMismatched: v.rangesMismatched,
		Duration:         time.Since(v.start),
		MissingIDs:       v.missing.strings(),
		ExtraIDs:         v.extra.strings(),
		DifferingIDs:     v.differing.strings(),
		UnsettledIDs:     v.unsettled.strings(),
	}
}
