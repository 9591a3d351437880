import java.time.Duration;
import java.util.*;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java transactional producer with read_committed consumers: commits
 * and aborts, a consume-transform-produce round with
 * sendOffsetsToTransaction in a consumer group, zombie fencing, and the
 * transaction admin APIs. Prints ALL OK when every check holds.
 */
public class TransactionProbe {
    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    static Properties props(String bootstrap, String... pairs) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        for (int i = 0; i < pairs.length; i += 2) p.put(pairs[i], pairs[i + 1]);
        return p;
    }

    static KafkaProducer<String, String> transactional(String bootstrap, String id) {
        KafkaProducer<String, String> producer = new KafkaProducer<>(props(bootstrap, "transactional.id", id), new StringSerializer(), new StringSerializer());
        producer.initTransactions();
        return producer;
    }

    /** Values of partition 0 a consumer at `isolation` reads up to its end offset. */
    static List<String> readAll(String bootstrap, String topic, String isolation) {
        Properties p = props(bootstrap, "isolation.level", isolation, "enable.auto.commit", "false");
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer())) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long end = consumer.endOffsets(List.of(tp)).get(tp);
            List<String> values = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 30_000;
            while (consumer.position(tp) < end) {
                check(System.currentTimeMillis() < deadline, isolation + " consumer stuck at " + consumer.position(tp) + " of " + end);
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) values.add(r.value());
            }
            return values;
        }
    }

    static void send(KafkaProducer<String, String> producer, String topic, String prefix, int count) {
        for (int i = 0; i < count; i++) producer.send(new ProducerRecord<>(topic, 0, prefix + i, prefix + i));
        producer.flush();
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String prefix = args[1];
        String topic = prefix + "-txn";
        String input = prefix + "-input";
        String output = prefix + "-output";
        try (Admin admin = Admin.create(props(bootstrap))) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1), new NewTopic(input, 1, (short) 1), new NewTopic(output, 1, (short) 1))).all().get();
        }

        try (KafkaProducer<String, String> producer = transactional(bootstrap, prefix + "-writer")) {
            producer.beginTransaction();
            send(producer, topic, "c", 50);
            producer.commitTransaction();
            producer.beginTransaction();
            send(producer, topic, "a", 30);
            producer.abortTransaction();
            producer.beginTransaction();
            send(producer, topic, "d", 20);
            producer.commitTransaction();
        }
        List<String> committed = readAll(bootstrap, topic, "read_committed");
        check(committed.size() == 70, "read_committed sees 70 records, got " + committed.size());
        check(committed.stream().noneMatch(v -> v.startsWith("a")), "no aborted record is visible");
        check(committed.get(0).equals("c0") && committed.get(69).equals("d19"), "committed records in order");
        check(readAll(bootstrap, topic, "read_uncommitted").size() == 100, "read_uncommitted sees all 100 records");
        System.out.println("commit and abort ok");

        try (KafkaProducer<String, String> plain = new KafkaProducer<>(props(bootstrap), new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < 10; i++) plain.send(new ProducerRecord<>(input, 0, null, "ride-" + i));
        }
        String group = prefix + "-processors";
        Properties cp = props(bootstrap, "group.id", group, "isolation.level", "read_committed", "enable.auto.commit", "false", "auto.offset.reset", "earliest");
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer());
             KafkaProducer<String, String> producer = transactional(bootstrap, prefix + "-processor")) {
            consumer.subscribe(List.of(input));
            List<ConsumerRecord<String, String>> batch = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 30_000;
            while (batch.size() < 10 && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) batch.add(r);
            }
            check(batch.size() == 10, "consumed the 10 inputs, got " + batch.size());
            producer.beginTransaction();
            for (ConsumerRecord<String, String> r : batch) producer.send(new ProducerRecord<>(output, 0, null, r.value().toUpperCase()));
            producer.sendOffsetsToTransaction(Map.of(new TopicPartition(input, 0), new OffsetAndMetadata(10)), consumer.groupMetadata());
            producer.commitTransaction();
        }
        try (Admin admin = Admin.create(props(bootstrap))) {
            Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            check(offsets.get(new TopicPartition(input, 0)).offset() == 10, "offsets committed with the transaction: " + offsets);
        }
        check(readAll(bootstrap, output, "read_committed").equals(List.of("RIDE-0", "RIDE-1", "RIDE-2", "RIDE-3", "RIDE-4", "RIDE-5", "RIDE-6", "RIDE-7", "RIDE-8", "RIDE-9")),
              "transformed records committed");
        System.out.println("consume-transform-produce ok");

        KafkaProducer<String, String> zombie = transactional(bootstrap, prefix + "-zombie");
        zombie.beginTransaction();
        send(zombie, topic, "z", 1);
        try (KafkaProducer<String, String> successor = transactional(bootstrap, prefix + "-zombie")) {
            boolean fenced = false;
            try {
                zombie.commitTransaction();
            } catch (ProducerFencedException | InvalidProducerEpochException e) {
                fenced = true;
            } catch (KafkaException e) {
                fenced = e.getCause() instanceof ProducerFencedException || e.getCause() instanceof InvalidProducerEpochException;
            }
            check(fenced, "the zombie's commit is fenced");
            successor.beginTransaction();
            send(successor, topic, "s", 1);
            successor.commitTransaction();
        } finally {
            zombie.close(Duration.ZERO);
        }
        List<String> after = readAll(bootstrap, topic, "read_committed");
        check(after.size() == 71 && after.get(70).equals("s0") && !after.contains("z0"), "only the successor's record is visible: " + after.subList(70, after.size()));
        System.out.println("fencing ok");

        try (Admin admin = Admin.create(props(bootstrap))) {
            String writer = prefix + "-writer";
            TransactionDescription description = admin.describeTransactions(List.of(writer)).description(writer).get();
            check(description.state() == TransactionState.COMPLETE_COMMIT, "writer's last transaction committed: " + description.state());
            check(description.topicPartitions().isEmpty(), "a complete transaction holds no partitions");
            Collection<TransactionListing> listed = admin.listTransactions().all().get();
            check(listed.stream().anyMatch(l -> l.transactionalId().equals(writer) && l.producerId() == description.producerId()), "listTransactions names the writer");
            TopicPartition tp = new TopicPartition(topic, 0);
            List<ProducerState> producers = admin.describeProducers(List.of(tp)).partitionResult(tp).get().activeProducers();
            check(producers.stream().anyMatch(p -> p.producerId() == description.producerId() && p.currentTransactionStartOffset().isEmpty()),
                  "describeProducers knows the writer, with no open transaction: " + producers);
        }
        System.out.println("admin ok");
        System.out.println("ALL OK");
    }
}
