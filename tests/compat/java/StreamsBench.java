import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.*;
import org.apache.kafka.streams.state.BuiltInDslStoreSuppliers;

/**
 * The peer of `runnel bench streams`: the same three topologies in Java
 * Kafka Streams, over the same input topics `runnel bench streams` writes,
 * on the same broker. Prints one JSON line: records processed, seconds
 * and CPU seconds from the first record to the last, and resident memory
 * of this process at the end.
 *
 *   java -cp ... StreamsBench BOOTSTRAP stateless|windowed|join RECORDS [rocksdb]
 */
public class StreamsBench {
    static final String INPUT = "bench-streams-input";
    static final String TABLE = "bench-streams-table";

    static Topology topology(String kind, AtomicLong processed) {
        StreamsBuilder builder = new StreamsBuilder();
        Consumed<String, String> strings = Consumed.with(Serdes.String(), Serdes.String());
        KStream<String, String> input = builder.stream(INPUT, strings).peek((k, v) -> processed.incrementAndGet());
        switch (kind) {
            case "stateless" -> input.filter((k, v) -> v.contains("\"even\":true"))
                .mapValues(v -> v.length() + ":" + v.substring(0, 24))
                .to("bench-streams-out-stateless", Produced.with(Serdes.String(), Serdes.String()));
            case "windowed" -> input.groupByKey()
                .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofSeconds(10), Duration.ofSeconds(5)))
                .count()
                .toStream()
                .to("bench-streams-out-windowed", Produced.with(WindowedSerdes.timeWindowedSerdeFrom(String.class, 10_000L), Serdes.Long()));
            case "join" -> {
                KTable<String, String> table = builder.table(TABLE, strings);
                input.join(table, (v, t) -> v.length() + ":" + t, Joined.with(Serdes.String(), Serdes.String(), Serdes.String()))
                    .to("bench-streams-out-join", Produced.with(Serdes.String(), Serdes.String()));
            }
            default -> throw new IllegalArgumentException(kind);
        }
        return builder.build();
    }

    static double rssMb() throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024.0;
        }
        return -1;
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], kind = args[1];
        long records = Long.parseLong(args[2]);
        boolean rocksdb = args.length > 3 && args[3].equals("rocksdb");
        AtomicLong processed = new AtomicLong();
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "bench-java-" + kind + "-" + System.nanoTime());
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put("auto.offset.reset", "earliest");
        if (!rocksdb) {
            props.put(StreamsConfig.DSL_STORE_SUPPLIERS_CLASS_CONFIG, BuiltInDslStoreSuppliers.InMemoryDslStoreSuppliers.class);
        }
        props.put(StreamsConfig.STATE_DIR_CONFIG, Files.createTempDirectory("bench-java").toString());
        com.sun.management.OperatingSystemMXBean os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        KafkaStreams streams = new KafkaStreams(topology(kind, processed), props);
        streams.start();
        // Timed from the first record, so the group's start-up is not.
        long deadline = System.nanoTime() + Duration.ofMinutes(10).toNanos();
        while (processed.get() == 0 && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        long cpuStart = os.getProcessCpuTime();
        long start = System.nanoTime();
        while (processed.get() < records && System.nanoTime() < deadline) {
            Thread.sleep(2);
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        double cpu = (os.getProcessCpuTime() - cpuStart) / 1e9;
        double rss = rssMb();
        streams.close(Duration.ofSeconds(30));
        System.out.printf("{\"workload\":\"streams-%s\",\"records\":%d,\"seconds\":%.3f,\"records_per_sec\":%.0f,\"cpu_seconds\":%.2f,\"rss_mb\":%.1f}%n",
            kind, processed.get(), seconds, processed.get() / seconds, cpu, rss);
    }
}
