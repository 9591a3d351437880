import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Pattern;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;

import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Cooperative-sticky and static group members of the Java client, each
 * polled by its own thread as applications do. Prints, as lines starting
 * with `|`, the assignment (+n) and revocation (-n) events each member saw
 * in each step, for comparison between brokers. The topic (6 partitions)
 * must exist.
 *
 * <p>With {@code changes} as a third argument it changes subscriptions
 * instead: a member adds and drops a topic, pattern members meet a new
 * topic, and a member stops polling past {@code max.poll.interval.ms}.
 * Topics NAME-a, NAME-b and NAME-w-1 (4 partitions each) must exist.
 */
public class RebalanceProbe {
    static class Member implements ConsumerRebalanceListener {
        private final KafkaConsumer<String, String> consumer;
        private final List<String> events = Collections.synchronizedList(new ArrayList<>());
        private final AtomicInteger owned = new AtomicInteger();
        private final BlockingQueue<Runnable> commands = new LinkedBlockingQueue<>();
        private final Thread thread;
        private volatile boolean running = true;
        private volatile boolean subscribed;
        private volatile Set<TopicPartition> assignment = Set.of();

        Member(String bootstrap, String topic, String group, String instance) {
            this(bootstrap, group, instance == null ? Map.of() : Map.of("group.instance.id", instance, "session.timeout.ms", "20000"));
            subscribe(List.of(topic));
        }

        Member(String bootstrap, String group, Map<String, String> extra) {
            Properties p = new Properties();
            p.put("bootstrap.servers", bootstrap);
            p.put("group.id", group);
            p.put("partition.assignment.strategy", CooperativeStickyAssignor.class.getName());
            p.put("session.timeout.ms", "10000");
            p.put("heartbeat.interval.ms", "500");
            p.put("auto.offset.reset", "earliest");
            p.putAll(extra);
            consumer = new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer());
            thread = new Thread(this::run);
            thread.start();
        }

        void subscribe(List<String> topics) {
            commands.add(() -> consumer.subscribe(topics, this));
            subscribed = true;
        }

        void subscribe(Pattern pattern) {
            commands.add(() -> consumer.subscribe(pattern, this));
            subscribed = true;
        }

        /** Stops polling for a while, as a slow record handler would. */
        void stall(long ms) {
            commands.add(() -> sleep(ms));
        }

        Set<String> topics(String prefix) {
            Set<String> topics = new TreeSet<>();
            for (TopicPartition tp : assignment) topics.add(tp.topic().substring(prefix.length()));
            return topics;
        }

        private void run() {
            while (running) {
                Runnable command;
                while ((command = commands.poll()) != null) command.run();
                if (subscribed) consumer.poll(Duration.ofMillis(50));
                else sleep(20);
                assignment = new HashSet<>(consumer.assignment());
                owned.set(assignment.size());
            }
            consumer.close();
        }

        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            if (!partitions.isEmpty()) events.add("+" + partitions.size());
        }

        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            if (!partitions.isEmpty()) events.add("-" + partitions.size());
        }

        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            if (!partitions.isEmpty()) events.add("lost " + partitions.size());
        }

        void unsubscribe() {
            subscribed = false;
            commands.add(consumer::unsubscribe);
        }

        /** Closes the consumer (a static member stays in the group). */
        void close() throws InterruptedException {
            running = false;
            thread.join();
        }

        String taken() {
            synchronized (events) {
                String out = events.toString().replace(", ", " ");
                events.clear();
                return out;
            }
        }
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            throw new RuntimeException(e);
        }
    }

    static void settle(List<Member> members, int[] counts, String what) {
        long deadline = System.currentTimeMillis() + 60_000;
        while (true) {
            boolean done = true;
            for (int i = 0; i < counts.length; i++) done &= members.get(i).owned.get() == counts[i];
            if (done) return;
            if (System.currentTimeMillis() > deadline) throw new AssertionError("timed out waiting for " + what);
            sleep(20);
        }
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        if (args.length > 2 && args[2].equals("changes")) {
            changes(bootstrap, topic);
            return;
        }
        Member a = new Member(bootstrap, topic, topic + "-co", null);
        Member b = new Member(bootstrap, topic, topic + "-co", null);
        settle(List.of(a, b), new int[] {3, 3}, "two members starting together");
        System.out.println("| start together: " + a.taken() + " " + b.taken());
        Member c = new Member(bootstrap, topic, topic + "-co", null);
        settle(List.of(a, b, c), new int[] {2, 2, 2}, "a third member");
        sleep(1000);
        System.out.println("| third joins: " + a.taken() + " " + b.taken() + " " + c.taken());
        c.unsubscribe();
        settle(List.of(a, b, c), new int[] {3, 3, 0}, "the unsubscribed member's partitions");
        sleep(1000);
        System.out.println("| third unsubscribes: " + a.taken() + " " + b.taken() + " " + c.taken());
        for (Member m : List.of(a, b, c)) m.close();

        Member s1 = new Member(bootstrap, topic, topic + "-static", "s1");
        Member s2 = new Member(bootstrap, topic, topic + "-static", "s2");
        settle(List.of(s1, s2), new int[] {3, 3}, "two static members");
        Set<TopicPartition> before = s1.assignment;
        s1.taken();
        s2.taken();
        s1.close();
        s1 = new Member(bootstrap, topic, topic + "-static", "s1");
        settle(List.of(s1, s2), new int[] {3, 3}, "the restarted static member");
        sleep(2000);
        System.out.println("| static restart: same partitions " + before.equals(s1.assignment) + "; " + s1.taken() + " " + s2.taken());
        s1.close();
        s2.close();
    }

    static void changes(String bootstrap, String name) throws Exception {
        Member a = new Member(bootstrap, name + "-subs", Map.of());
        Member b = new Member(bootstrap, name + "-subs", Map.of());
        a.subscribe(List.of(name + "-a"));
        b.subscribe(List.of(name + "-a"));
        settle(List.of(a, b), new int[] {2, 2}, "two members to split one topic");
        a.taken();
        b.taken();
        a.subscribe(List.of(name + "-a", name + "-b"));
        settle(List.of(a, b), new int[] {4, 4}, "a member adding a topic to take all of it");
        sleep(1000);
        System.out.println("| one member adds a topic: " + a.taken() + " " + b.taken() + " " + a.topics(name) + " " + b.topics(name));
        a.subscribe(List.of(name + "-a"));
        settle(List.of(a, b), new int[] {2, 2}, "the member dropping the topic again");
        sleep(1000);
        System.out.println("| and drops it: " + a.taken() + " " + b.taken() + " " + a.topics(name) + " " + b.topics(name));
        a.close();
        b.close();

        Map<String, String> fresh = Map.of("metadata.max.age.ms", "1000");
        Member c = new Member(bootstrap, name + "-wild", fresh);
        Member d = new Member(bootstrap, name + "-wild", fresh);
        c.subscribe(Pattern.compile(Pattern.quote(name) + "-w-.*"));
        d.subscribe(Pattern.compile(Pattern.quote(name) + "-w-.*"));
        settle(List.of(c, d), new int[] {2, 2}, "two pattern members to split the one matching topic");
        c.taken();
        d.taken();
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            admin.createTopics(List.of(new NewTopic(name + "-w-2", 4, (short) 1))).all().get();
        }
        settle(List.of(c, d), new int[] {4, 4}, "the pattern members to share the new matching topic");
        sleep(1000);
        System.out.println("| a new topic matches: " + c.taken() + " " + d.taken() + " " + c.topics(name) + " " + d.topics(name));
        c.close();
        d.close();

        Map<String, String> deadline = Map.of("session.timeout.ms", "6000", "max.poll.interval.ms", "7000");
        Member e = new Member(bootstrap, name + "-slow", deadline);
        Member f = new Member(bootstrap, name + "-slow", deadline);
        e.subscribe(List.of(name + "-a"));
        f.subscribe(List.of(name + "-a"));
        settle(List.of(e, f), new int[] {2, 2}, "two members to split one topic");
        e.taken();
        f.taken();
        e.stall(12_000);
        settle(List.of(f), new int[] {4}, "the member that kept polling to take the other's partitions");
        sleep(1000);
        System.out.println("| a member stops polling: " + e.taken() + " " + f.taken());
        settle(List.of(e, f), new int[] {2, 2}, "the member that polls again to get its share back");
        sleep(1000);
        System.out.println("| and polls again: " + e.taken() + " " + f.taken());
        e.close();
        f.close();
    }
}
