import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.Future;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/** The Java kafka-clients against runnel: admin, idempotent producer, consumer. */
public class ClientProbe {
    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String prefix = args[1];
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);

        try (Admin admin = Admin.create(common)) {
            String topic = prefix + "-admin";
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1).configs(Map.of("retention.ms", "3600000")))).all().get();
            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            Config config = admin.describeConfigs(List.of(resource)).all().get().get(resource);
            check(config.get("retention.ms").value().equals("3600000"), "retention.ms set at creation");
            check(config.get("retention.ms").source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "topic source");
            check(config.get("segment.bytes").source() == ConfigEntry.ConfigSource.DEFAULT_CONFIG, "default source");
            admin.incrementalAlterConfigs(Map.of(resource, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET)))).all().get();
            config = admin.describeConfigs(List.of(resource)).all().get().get(resource);
            check(config.get("retention.ms").value().equals("7200000"), "altered retention.ms");
            admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all().get();
            TopicDescription description = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            check(description.partitions().size() == 5, "five partitions after growing");
            long base = System.currentTimeMillis() - 60_000;
            try (Producer<String, String> producer = new KafkaProducer<>(common, new StringSerializer(), new StringSerializer())) {
                // Offset 6 carries the newest timestamp.
                for (int i = 0; i < 10; i++) producer.send(new ProducerRecord<>(topic, 2, base + (i == 6 ? 100 : i), null, "x")).get();
            }
            TopicPartition tp = new TopicPartition(topic, 2);
            admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(4))).all().get();
            Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> earliest = admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).all().get();
            check(earliest.get(tp).offset() == 4, "delete records moved the log start to 4");
            ListOffsetsResult.ListOffsetsResultInfo newest = admin.listOffsets(Map.of(tp, OffsetSpec.maxTimestamp())).all().get().get(tp);
            check(newest.offset() == 6 && newest.timestamp() == base + 100, "max timestamp at offset 6: " + newest);
            try {
                admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(11))).all().get();
                check(false, "deleting records past the end is refused");
            } catch (java.util.concurrent.ExecutionException e) {
                check(e.getCause() instanceof org.apache.kafka.common.errors.OffsetOutOfRangeException, "past the end: " + e.getCause());
            }

            String group = prefix + "-offsets";
            Properties c = (Properties) common.clone();
            c.put("group.id", group);
            c.put("auto.offset.reset", "earliest");
            c.put("enable.auto.commit", "false");
            try (Consumer<String, String> consumer = new KafkaConsumer<>(c, new StringDeserializer(), new StringDeserializer())) {
                consumer.subscribe(List.of(topic));
                long deadline = System.currentTimeMillis() + 20_000;
                while (consumer.assignment().isEmpty() && System.currentTimeMillis() < deadline) consumer.poll(Duration.ofMillis(100));
                consumer.commitSync(Map.of(tp, new OffsetAndMetadata(8)));
                try {
                    admin.deleteConsumerGroupOffsets(group, Set.of(tp)).all().get();
                    check(false, "offsets of a subscribed topic cannot be deleted");
                } catch (java.util.concurrent.ExecutionException e) {
                    check(e.getCause() instanceof org.apache.kafka.common.errors.GroupSubscribedToTopicException, "subscribed: " + e.getCause());
                }
            }
            admin.deleteConsumerGroupOffsets(group, Set.of(tp)).all().get();
            check(!admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().containsKey(tp), "offsets deleted once the group is empty");
            admin.deleteTopics(List.of(topic)).all().get();
            check(!admin.listTopics().names().get().contains(topic), "topic deleted");
            System.out.println("admin ok");
        }

        for (String codec : List.of("none", "gzip", "snappy", "lz4", "zstd")) {
            String topic = prefix + "-" + codec;
            Properties p = (Properties) common.clone();
            p.put("compression.type", codec);
            p.put("enable.idempotence", "true");
            p.put("acks", "all");
            p.put("linger.ms", "5");
            // Recent timestamps: Apache Kafka deletes records older than
            // its retention (7 days) whenever its retention check runs.
            long base = System.currentTimeMillis() - 3_600_000L;
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            try (Producer<String, String> producer = new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
                for (int i = 0; i < 200; i++) {
                    ProducerRecord<String, String> record = new ProducerRecord<>(topic, 0, base + i, "k" + i, codec + "-" + i);
                    record.headers().add("h", ("v" + i).getBytes(StandardCharsets.UTF_8));
                    sent.add(producer.send(record));
                }
                producer.flush();
                for (int i = 0; i < 200; i++) check(sent.get(i).get().offset() == i, codec + " offset " + i);
            }
            Properties c = (Properties) common.clone();
            try (Consumer<String, String> consumer = new KafkaConsumer<>(c, new StringDeserializer(), new StringDeserializer())) {
                TopicPartition tp = new TopicPartition(topic, 0);
                consumer.assign(List.of(tp));
                consumer.seekToBeginning(List.of(tp));
                List<ConsumerRecord<String, String>> got = new ArrayList<>();
                long deadline = System.currentTimeMillis() + 20_000;
                while (got.size() < 200 && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) got.add(r);
                }
                check(got.size() == 200, codec + ": consumed " + got.size());
                for (int i = 0; i < 200; i++) {
                    ConsumerRecord<String, String> r = got.get(i);
                    check(r.offset() == i && r.key().equals("k" + i) && r.value().equals(codec + "-" + i), codec + " record " + i);
                    check(r.timestamp() == base + i, codec + " timestamp " + i);
                    Header h = r.headers().lastHeader("h");
                    check(new String(h.value(), StandardCharsets.UTF_8).equals("v" + i), codec + " header " + i);
                }
                Map<TopicPartition, OffsetAndTimestamp> at = consumer.offsetsForTimes(Map.of(tp, base + 150));
                check(at.get(tp).offset() == 150, codec + " offsetsForTimes");
            }
            System.out.println("codec " + codec + " ok");
        }

        String keyed = prefix + "-keyed";
        try (Admin admin = Admin.create(common)) {
            admin.createTopics(List.of(new NewTopic(keyed, 6, (short) 1))).all().get();
        }
        Map<String, Set<Integer>> placements = new HashMap<>();
        try (Producer<String, String> producer = new KafkaProducer<>(common, new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < 120; i++) {
                String key = "zone-" + (i % 20);
                int partition = producer.send(new ProducerRecord<>(keyed, key, "ride")).get().partition();
                placements.computeIfAbsent(key, k -> new HashSet<>()).add(partition);
            }
            int auto = producer.send(new ProducerRecord<>(prefix + "-auto", "hello")).get().partition();
            check(auto == 0, "auto-created topic");
        }
        Set<Integer> used = new HashSet<>();
        for (Set<Integer> ps : placements.values()) {
            check(ps.size() == 1, "a key maps to one partition");
            used.addAll(ps);
        }
        check(used.size() >= 4, "keys spread over partitions: " + used);
        System.out.println("keyed ok");
        System.out.println("ALL OK");
    }
}
