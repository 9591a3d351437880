package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// member is a cooperative-sticky franz-go group member polled by its own
// goroutine; it records the partitions each assignment (+n) and
// revocation (-n) moved.
type member struct {
	client *kgo.Client
	mu     sync.Mutex
	events []string
	owned  map[int32]bool
	done   chan struct{}
}

func newMember(bootstrap, topic, group, instance string) *member {
	m := &member{owned: map[int32]bool{}, done: make(chan struct{})}
	opts := []kgo.Opt{
		kgo.SeedBrokers(bootstrap),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(10 * time.Second),
		kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) { m.moved("+", assigned, true) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, revoked map[string][]int32) { m.moved("-", revoked, false) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) { m.moved("lost ", lost, false) }),
	}
	if instance != "" {
		opts = append(opts, kgo.InstanceID(instance), kgo.SessionTimeout(20*time.Second))
	}
	client, err := kgo.NewClient(opts...)
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
	for _, ps := range partitions {
		for _, p := range ps {
			m.owned[p] = add
			n++
		}
	}
	if n > 0 {
		m.events = append(m.events, fmt.Sprintf("%s%d", sign, n))
	}
}

func (m *member) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, owned := range m.owned {
		if owned {
			n++
		}
	}
	return n
}

func (m *member) assignment() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps []string
	for p := 0; p < 6; p++ {
		if m.owned[int32(p)] {
			ps = append(ps, fmt.Sprint(p))
		}
	}
	return strings.Join(ps, ",")
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
