package replay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/subjects"
)

// Large values (ADR 025) are stored as parts on the namespace's blob
// stream. An upload that no put ever named (the client gave up or
// crashed), and the value of a record overwritten and compacted away,
// leave parts nothing references: CollectBlobs purges them.

// blobCollectMargin is the time a put naming an upload is given to be
// stored after namespaces.UploadHorizon.
const blobCollectMargin = 10 * time.Minute

// BlobStats is what a CollectBlobs pass did.
type BlobStats struct {
	// Blobs is how many blobs (uploads) the blob stream held.
	Blobs int `json:"blobs"`
	// Referenced counts the blobs an event on the namespace stream names;
	// 0 when no blob was old enough to purge, as the stream is then not
	// read.
	Referenced int `json:"referenced"`
	// Purged counts the blobs removed: no event names them and their last
	// part is older than the upload horizon.
	Purged int `json:"purged"`
	// MessagesRemoved counts the parts removed.
	MessagesRemoved uint64 `json:"messages_removed"`
}

// CollectBlobs purges from namespace ns's blob stream the parts of every
// upload that no event on the namespace stream references and whose last
// part is older than olderThan (namespaces.UploadHorizon plus 10 minutes when 0).
// Every event still on the stream keeps its blob, so a replay from the
// start resolves every value it meets. A namespace without a blob stream
// has nothing to collect. Errors: the JetStream error.
func CollectBlobs(ctx context.Context, js jetstream.JetStream, ns string, olderThan time.Duration) (BlobStats, error) {
	return collectBlobs(ctx, js, ns, olderThan, 0)
}

// collectBlobs is CollectBlobs reading the namespace stream at perSecond
// messages a second (0: unpaced), as the Compactor's passes do.
func collectBlobs(ctx context.Context, js jetstream.JetStream, ns string, olderThan time.Duration, perSecond float64) (BlobStats, error) {
	var st BlobStats
	if olderThan == 0 {
		olderThan = namespaces.UploadHorizon + blobCollectMargin
	}
	blobs, err := js.Stream(ctx, subjects.BlobStream(ns))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("collect blobs of %s: %w", ns, err)
	}
	info, err := blobs.Info(ctx, jetstream.WithSubjectFilter(subjects.BlobStreamSubjects(ns)[0]))
	if err != nil {
		return st, fmt.Errorf("collect blobs of %s: %w", ns, err)
	}
	st.Blobs = len(info.State.Subjects)
	// Old enough first, then the references: a put naming an old upload
	// was stored before the horizon ran out, so the scan below sees it.
	cutoff := time.Now().Add(-olderThan)
	old := map[string]uint64{}
	for subj, n := range info.State.Subjects {
		last, err := blobs.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return st, fmt.Errorf("collect blobs of %s: %w", ns, err)
		}
		if last.Time.Before(cutoff) {
			old[strings.TrimPrefix(subj, subjects.Blob(ns, ""))] = n
		}
	}
	if len(old) == 0 { // nothing to purge: no need to read the stream
		return st, nil
	}
	refs, err := referencedBlobs(ctx, js, ns, perSecond)
	if err != nil {
		return st, err
	}
	st.Referenced = len(refs)
	for id, n := range old {
		if refs[id] {
			continue
		}
		if err := blobs.Purge(ctx, jetstream.WithPurgeSubject(subjects.Blob(ns, id))); err != nil {
			return st, fmt.Errorf("purge blob %s of %s: %w", id, ns, err)
		}
		st.Purged++
		st.MessagesRemoved += n
	}
	return st, nil
}

// referencedBlobs reads the namespace stream once, at perSecond messages
// a second (0: unpaced), and returns the blobs its KeyValue events name.
func referencedBlobs(ctx context.Context, js jetstream.JetStream, ns string, perSecond float64) (map[string]bool, error) {
	s, err := js.Stream(ctx, subjects.Stream(ns))
	if err != nil {
		return nil, fmt.Errorf("collect blobs of %s: %w", ns, err)
	}
	state := s.CachedInfo().State
	refs := map[string]bool{}
	p := &pass{js: js, ns: ns, name: subjects.Stream(ns)}
	p.paced(perSecond)
	err = p.scan(ctx, state.FirstSeq, state.LastSeq, func(m *jetstream.RawStreamMsg) {
		ev, err := subjects.DecodeKeyValueEvent(m.Subject, m.Header, m.Data)
		if err != nil || ev == nil {
			return
		}
		items := ev.GetPut().GetItems()
		if r := ev.GetReplace(); r != nil {
			items = r.GetItems()
		}
		for _, it := range items {
			if c := it.GetChunked(); c != nil {
				refs[c.GetUploadId()] = true
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("collect blobs of %s: %w", ns, err)
	}
	return refs, nil
}
