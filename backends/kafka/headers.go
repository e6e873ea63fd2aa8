package kafka

import (
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// Headers of a record Prism writes, besides the event's CloudEvents ones
// (ce-id, ce-type, ce-time, ce-source, ce-subject, ce-specversion,
// content-type, ce-prismnamespace, …) and the writer's own.
const (
	// HeaderSeq is the stream sequence of the event, in decimal.
	HeaderSeq = "prism-seq"
)

// message builds the Kafka message of c: keyed by the record key, the
// value as data, headers in a fixed order (the CloudEvents ones by name,
// prism-seq, then the writer's by name), stamped now.
func message(c *prismv1.LogChange, now time.Time) kafka.Message {
	ev := c.GetEvent()
	ce, user := c.GetCloudEvent(), ev.GetHeaders()
	h := make([]kafka.Header, 0, len(ce)+1+len(user))
	for _, k := range sortedKeys(ce) {
		h = append(h, kafka.Header{Key: k, Value: []byte(ce[k])})
	}
	h = append(h, kafka.Header{Key: HeaderSeq, Value: strconv.AppendUint(nil, c.GetSeq(), 10)})
	for _, k := range sortedKeys(user) {
		h = append(h, kafka.Header{Key: k, Value: []byte(user[k])})
	}
	return kafka.Message{Key: ev.GetKey(), Value: ev.GetValue(), Headers: h, Time: now}
}

// messageSize is about what m costs in a produce request; it decides how
// many messages ApplyLog hands the Writer at once.
func messageSize(m kafka.Message) int {
	n := 64 + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += 8 + len(h.Key) + len(h.Value)
	}
	return n
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Record returns the Log record of a Kafka message of the topic as Prism
// wrote it: key, value, the writer's headers, the stream sequence
// (prism-seq), the CloudEvent id (ce-id) and time (ce-time). A consumer
// that reads the topic with its own Kafka client (say, a kafka-go Reader of
// a consumer group) uses it to get what Fetch returns. A message another
// producer wrote, without those headers, gets seq 0, an empty id and no
// time. Every header that is not subjects.IsReservedLogHeader is the
// writer's.
func Record(m kafka.Message) *prismv1.LogRecord {
	rec := &prismv1.LogRecord{
		Partition: int32(m.Partition),
		Offset:    m.Offset,
		Key:       m.Key,
		Value:     m.Value,
	}
	for _, h := range m.Headers {
		switch {
		case h.Key == HeaderSeq:
			rec.Seq, _ = strconv.ParseUint(string(h.Value), 10, 64)
		case h.Key == subjects.HeaderID:
			rec.Id = string(h.Value)
		case h.Key == subjects.HeaderTime:
			if t, err := time.Parse(time.RFC3339Nano, string(h.Value)); err == nil {
				rec.Time = timestamppb.New(t)
			}
		case !subjects.IsReservedLogHeader(h.Key):
			if rec.Headers == nil {
				rec.Headers = make(map[string]string)
			}
			rec.Headers[h.Key] = string(h.Value)
		}
	}
	return rec
}
