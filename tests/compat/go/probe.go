// Command probe drives a Kafka-compatible broker with franz-go: admin,
// keyed records with headers in every codec, a consumer group that
// commits, and a rebalance when a member leaves. It prints what it saw,
// one line per fact, so runs against two brokers can be compared, and
// ends with "ALL OK"; any failure exits non-zero.
//
// `probe rebalance BOOTSTRAP TOPIC` instead prints the assignment and
// revocation events of cooperative-sticky and static members, and
// `probe subscription-changes BOOTSTRAP NAME` those of members changing
// what they subscribe to (rebalance.go).
package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const partitions = 3

func must(err error, what string) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "rebalance" {
		rebalance(os.Args[2], os.Args[3])
		return
	}
	if len(os.Args) == 4 && os.Args[1] == "subscription-changes" {
		subscriptionChanges(os.Args[2], os.Args[3])
		return
	}
	bootstrap, prefix := os.Args[1], os.Args[2]
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	topic, group := prefix+"-franz", prefix+"-franz-group"

	admin, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	must(err, "admin client")
	defer admin.Close()
	adm := kadm.NewClient(admin)
	created, err := adm.CreateTopics(ctx, partitions, 1, nil, topic)
	must(err, "create topics")
	must(created[topic].Err, "create topic")
	again, err := adm.CreateTopics(ctx, partitions, 1, nil, topic)
	must(err, "create topics again")
	fmt.Printf("create again: %v\n", again[topic].Err)
	for {
		details, err := adm.ListTopics(ctx, topic)
		must(err, "list topics")
		ready := len(details[topic].Partitions) == partitions
		for _, p := range details[topic].Partitions {
			ready = ready && p.Leader >= 0 && p.Err == nil
		}
		if ready {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Println("admin ok")

	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{{"none", kgo.NoCompression()}, {"gzip", kgo.GzipCompression()}, {"snappy", kgo.SnappyCompression()}, {"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()}}
	sent := 0
	for _, c := range codecs {
		producer, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ProducerBatchCompression(c.codec), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		must(err, "producer")
		// PROBE_BASE_MS (the same for both brokers' runs), else the start
		// of this hour: recent enough that Apache Kafka's retention keeps
		// the records.
		hour := time.Now().Truncate(time.Hour).UnixMilli()
		if base, err := strconv.ParseInt(os.Getenv("PROBE_BASE_MS"), 10, 64); err == nil {
			hour = base
		}
		var records []*kgo.Record
		for i := 0; i < 4; i++ {
			records = append(records, &kgo.Record{
				Topic:     topic,
				Partition: int32(i % partitions),
				Key:       []byte(fmt.Sprintf("ride-%d", i)),
				Value:     []byte(fmt.Sprintf(`{"codec":%q,"i":%d}`, c.name, i)),
				Headers:   []kgo.RecordHeader{{Key: "codec", Value: []byte(c.name)}},
				Timestamp: time.UnixMilli(hour + int64(i)),
			})
		}
		must(producer.ProduceSync(ctx, records...).FirstErr(), "produce "+c.name)
		producer.Close()
		sent += len(records)
		fmt.Printf("codec %s ok\n", c.name)
	}

	consumer, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	must(err, "consumer")
	var seen []string
	for len(seen) < sent {
		fetches := consumer.PollFetches(ctx)
		must(ctx.Err(), "polling")
		fetches.EachError(func(t string, p int32, err error) { must(err, fmt.Sprintf("fetch %s/%d", t, p)) })
		fetches.EachRecord(func(r *kgo.Record) {
			seen = append(seen, fmt.Sprintf("record %d/%d key=%s value=%s header=%s=%s time=%d", r.Partition, r.Offset, r.Key, r.Value, r.Headers[0].Key, r.Headers[0].Value, r.Timestamp.UnixMilli()))
		})
	}
	sort.Strings(seen)
	for _, line := range seen {
		fmt.Println(line)
	}
	must(consumer.CommitUncommittedOffsets(ctx), "commit")
	consumer.Close()
	offsets, err := adm.FetchOffsets(ctx, group)
	must(err, "fetch offsets")
	for p := int32(0); p < partitions; p++ {
		o, _ := offsets.Lookup(topic, p)
		fmt.Printf("committed %d: %d\n", p, o.At)
	}

	// Two members share the partitions; when one leaves, the other takes all.
	var mu sync.Mutex
	owned := map[string][]int32{}
	member := func(name string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumerGroup(group+"-split"), kgo.ConsumeTopics(topic),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
				mu.Lock()
				owned[name] = append(owned[name], assigned[topic]...)
				mu.Unlock()
			}),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
				mu.Lock()
				owned[name] = without(owned[name], revoked[topic])
				mu.Unlock()
			}))
		must(err, "member "+name)
		go func() {
			for ctx.Err() == nil && !cl.PollFetches(ctx).IsClientClosed() {
			}
		}()
		return cl
	}
	count := func(names ...string) (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		total, all := 0, true
		for _, n := range names {
			total += len(owned[n])
			all = all && len(owned[n]) > 0
		}
		return total, all
	}
	a, b := member("a"), member("b")
	waitFor(ctx, "two members split the partitions", func() bool { n, all := count("a", "b"); return n == partitions && all })
	fmt.Println("group split ok")
	b.Close()
	waitFor(ctx, "the remaining member takes over", func() bool { n, _ := count("a"); return n == partitions })
	fmt.Println("takeover ok")
	a.Close()
	fmt.Println("ALL OK")
}

func without(have, gone []int32) []int32 {
	var kept []int32
	for _, p := range have {
		drop := false
		for _, g := range gone {
			drop = drop || p == g
		}
		if !drop {
			kept = append(kept, p)
		}
	}
	return kept
}

func waitFor(ctx context.Context, what string, done func() bool) {
	for !done() {
		if ctx.Err() != nil {
			must(fmt.Errorf("timed out"), what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
