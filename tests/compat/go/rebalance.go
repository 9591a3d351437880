package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// member is a cooperative-sticky franz-go group member polled by its own
// goroutine; it records the partitions each assignment (+n), revocation
// (-n) and loss moved.
type member struct {
	client *kgo.Client
	mu     sync.Mutex
	events []string
	owned  map[string]bool // "topic/partition"
	done   chan struct{}
}

func newMember(bootstrap, topic, group, instance string) *member {
	if instance != "" {
		return startMember(bootstrap, group, kgo.ConsumeTopics(topic), kgo.InstanceID(instance), kgo.SessionTimeout(20*time.Second))
	}
	return startMember(bootstrap, group, kgo.ConsumeTopics(topic))
}

func startMember(bootstrap, group string, extra ...kgo.Opt) *member {
	m := &member{owned: map[string]bool{}, done: make(chan struct{})}
	opts := []kgo.Opt{
		kgo.SeedBrokers(bootstrap),
		kgo.ConsumerGroup(group),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(10 * time.Second),
		kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) { m.moved("+", assigned, true) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, revoked map[string][]int32) { m.moved("-", revoked, false) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) { m.moved("lost ", lost, false) }),
	}
	client, err := kgo.NewClient(append(opts, extra...)...)
	must(err, "group member")
	m.client = client
	go func() {
		defer close(m.done)
		for {
			fetches := m.client.PollFetches(context.Background())
			if fetches.IsClientClosed() {
				return
			}
		}
	}()
	return m
}

func (m *member) moved(sign string, partitions map[string][]int32, add bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for topic, ps := range partitions {
		for _, p := range ps {
			m.owned[fmt.Sprintf("%s/%d", topic, p)] = add
			n++
		}
	}
	if n > 0 {
		m.events = append(m.events, fmt.Sprintf("%s%d", sign, n))
	}
}

// ownedKeys lists the partitions it owns, sorted, as "topic/partition".
func (m *member) ownedKeys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []string
	for key, owned := range m.owned {
		if owned {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	return keys
}

func (m *member) count() int {
	return len(m.ownedKeys())
}

func (m *member) assignment() string {
	return strings.Join(m.ownedKeys(), ",")
}

// topics lists the topics it owns partitions of, without the run's prefix.
func (m *member) topics(prefix string) string {
	seen := map[string]bool{}
	var topics []string
	for _, key := range m.ownedKeys() {
		topic := strings.TrimPrefix(key[:strings.LastIndex(key, "/")], prefix)
		if !seen[topic] {
			seen[topic] = true
			topics = append(topics, topic)
		}
	}
	return "[" + strings.Join(topics, " ") + "]"
}

func (m *member) taken() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := "[" + strings.Join(m.events, " ") + "]"
	m.events = nil
	return out
}

func (m *member) close() {
	m.client.Close()
	<-m.done
}

func settle(members []*member, counts []int, what string) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		done := true
		for i, m := range members {
			done = done && m.count() == counts[i]
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "timed out waiting for %s\n", what)
			os.Exit(1)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rebalance prints, as lines starting with `|`, the events each
// cooperative-sticky member saw as two start together, a third joins and
// leaves, and a static member restarts; the topic (6 partitions) must
// exist.
func rebalance(bootstrap, topic string) {
	a := newMember(bootstrap, topic, topic+"-co", "")
	b := newMember(bootstrap, topic, topic+"-co", "")
	settle([]*member{a, b}, []int{3, 3}, "two members starting together")
	fmt.Println("| start together:", a.taken(), b.taken())
	c := newMember(bootstrap, topic, topic+"-co", "")
	settle([]*member{a, b, c}, []int{2, 2, 2}, "a third member")
	time.Sleep(time.Second)
	fmt.Println("| third joins:", a.taken(), b.taken(), c.taken())
	c.close()
	settle([]*member{a, b}, []int{3, 3}, "the departed member's partitions")
	time.Sleep(time.Second)
	fmt.Println("| third leaves:", a.taken(), b.taken())
	a.close()
	b.close()

	s1 := newMember(bootstrap, topic, topic+"-static", "s1")
	s2 := newMember(bootstrap, topic, topic+"-static", "s2")
	settle([]*member{s1, s2}, []int{3, 3}, "two static members")
	before := s1.assignment()
	s1.taken()
	s2.taken()
	s1.close()
	s1 = newMember(bootstrap, topic, topic+"-static", "s1")
	settle([]*member{s1, s2}, []int{3, 3}, "the restarted static member")
	time.Sleep(2 * time.Second)
	fmt.Println("| static restart: same partitions", before == s1.assignment(), s1.taken(), s2.taken())
	s1.close()
	s2.close()
}

// subscriptionChanges prints, as lines starting with `|`, the events of
// cooperative-sticky members as one adds and drops a topic and as pattern
// members meet a new topic. Topics NAME-a, NAME-b and NAME-w-1 (4
// partitions each) must exist. franz-go has no poll deadline, so the
// max.poll.interval.ms scenario of the other clients has no equivalent.
func subscriptionChanges(bootstrap, name string) {
	a := startMember(bootstrap, name+"-subs", kgo.ConsumeTopics(name+"-a"))
	b := startMember(bootstrap, name+"-subs", kgo.ConsumeTopics(name+"-a"))
	settle([]*member{a, b}, []int{2, 2}, "two members to split one topic")
	a.taken()
	b.taken()
	a.client.AddConsumeTopics(name + "-b")
	settle([]*member{a, b}, []int{4, 4}, "a member adding a topic to take all of it")
	time.Sleep(time.Second)
	fmt.Println("| one member adds a topic:", a.taken(), b.taken(), a.topics(name), b.topics(name))
	a.client.PurgeTopicsFromConsuming(name + "-b")
	settle([]*member{a, b}, []int{2, 2}, "the member dropping the topic again")
	time.Sleep(time.Second)
	fmt.Println("| and drops it:", a.taken(), b.taken(), a.topics(name), b.topics(name))
	a.close()
	b.close()

	pattern := kgo.ConsumeTopics("^" + regexp.QuoteMeta(name) + "-w-.*")
	fresh := []kgo.Opt{kgo.MetadataMaxAge(time.Second), kgo.MetadataMinAge(250 * time.Millisecond)}
	c := startMember(bootstrap, name+"-wild", append(fresh, pattern, kgo.ConsumeRegex())...)
	d := startMember(bootstrap, name+"-wild", append(fresh, pattern, kgo.ConsumeRegex())...)
	settle([]*member{c, d}, []int{2, 2}, "two pattern members to split the one matching topic")
	c.taken()
	d.taken()
	admin, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	must(err, "admin client")
	created, err := kadm.NewClient(admin).CreateTopics(context.Background(), 4, 1, nil, name+"-w-2")
	must(err, "create topics")
	must(created[name+"-w-2"].Err, "create topic")
	admin.Close()
	settle([]*member{c, d}, []int{4, 4}, "the pattern members to share the new matching topic")
	time.Sleep(time.Second)
	fmt.Println("| a new topic matches:", c.taken(), d.taken(), c.topics(name), d.topics(name))
	c.close()
	d.close()
}
