import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Cooperative-sticky and static group members of the Java client, each
 * polled by its own thread as applications do. Prints, as lines starting
 * with `|`, the assignment (+n) and revocation (-n) events each member saw
 * in each step, for comparison between brokers. The topic (6 partitions)
 * must exist.
 */
public class RebalanceProbe {
    static class Member implements ConsumerRebalanceListener {
        private final KafkaConsumer<String, String> consumer;
        private final List<String> events = Collections.synchronizedList(new ArrayList<>());
        private final AtomicInteger owned = new AtomicInteger();
        private final BlockingQueue<Runnable> commands = new LinkedBlockingQueue<>();
        private final Thread thread;
        private volatile boolean running = true;
        private volatile Set<TopicPartition> assignment = Set.of();

        Member(String bootstrap, String topic, String group, String instance) {
            Properties p = new Properties();
            p.put("bootstrap.servers", bootstrap);
            p.put("group.id", group);
            p.put("partition.assignment.strategy", CooperativeStickyAssignor.class.getName());
            p.put("session.timeout.ms", instance == null ? "10000" : "20000");
            p.put("heartbeat.interval.ms", "500");
            p.put("auto.offset.reset", "earliest");
            if (instance != null) p.put("group.instance.id", instance);
            consumer = new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer());
            consumer.subscribe(List.of(topic), this);
            thread = new Thread(this::run);
            thread.start();
        }

        private void run() {
            while (running) {
                Runnable command;
                while ((command = commands.poll()) != null) command.run();
                if (!consumer.subscription().isEmpty()) consumer.poll(Duration.ofMillis(50));
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
}
