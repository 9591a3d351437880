import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.*;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.*;
import org.apache.kafka.streams.kstream.*;
import org.apache.kafka.streams.state.BuiltInDslStoreSuppliers;
import org.apache.kafka.streams.test.TestRecord;

/**
 * The course's Kafka Streams programs (count per location, the same after
 * regrouping by pickup location, windowed count, ride/pickup join), run on Kafka Streams' TopologyTestDriver over
 * records read from a file. Input lines: topic TAB key TAB timestamp TAB
 * value; output lines: topic TAB key hex TAB value hex TAB timestamp, in
 * the order written. runnel-streams' `oracle` example prints the same.
 */
public class StreamsOracle {
    static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss");

    static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + Pattern.quote(name) + "\":\"([^\"]*)\"").matcher(json);
        return m.find() ? m.group(1) : "";
    }

    static Topology count() {
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream("rides", Consumed.with(Serdes.String(), Serdes.String()))
            .groupByKey()
            .count()
            .toStream()
            .to("rides-pulocation-count", Produced.with(Serdes.String(), Serdes.Long()));
        return builder.build();
    }

    static Topology regroup() {
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream("rides", Consumed.with(Serdes.String(), Serdes.String()))
            .groupBy((key, ride) -> field(ride, "PULocationID"), Grouped.with(Serdes.String(), Serdes.String()))
            .count()
            .toStream()
            .to("rides-pickup-count", Produced.with(Serdes.String(), Serdes.Long()));
        return builder.build();
    }

    static Topology windowed() {
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream("rides", Consumed.with(Serdes.String(), Serdes.String()))
            .groupByKey()
            .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofSeconds(10), Duration.ofSeconds(5)))
            .count()
            .toStream()
            .to("rides-pulocation-window-count", Produced.with(WindowedSerdes.timeWindowedSerdeFrom(String.class, 10_000L), Serdes.Long()));
        return builder.build();
    }

    static Topology join() {
        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, String> rides = builder.stream("rides", Consumed.with(Serdes.String(), Serdes.String()));
        KStream<String, String> pickups = builder.stream("rides_location", Consumed.with(Serdes.String(), Serdes.String()))
            .selectKey((key, pickup) -> field(pickup, "PULocationID"));
        rides.join(pickups, (ride, pickup) -> {
                String dropoff = field(ride, "tpep_dropoff_datetime");
                String pickupTime = field(pickup, "tpep_pickup_datetime");
                Duration apart = Duration.between(LocalDateTime.parse(dropoff, TIME), LocalDateTime.parse(pickupTime, TIME));
                if (apart.abs().toMillis() > 10 * 60_000) return null;
                return "{\"VendorID\":\"" + field(ride, "VendorID") + "\",\"PULocationID\":\"" + field(pickup, "PULocationID")
                    + "\",\"pickupTime\":\"" + pickupTime + "\",\"lastDropoffTime\":\"" + dropoff + "\"}";
            }, JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMinutes(20), Duration.ofMinutes(5)),
            StreamJoined.with(Serdes.String(), Serdes.String(), Serdes.String()))
            .filter((key, info) -> info != null)
            .to("vendor_info", Produced.with(Serdes.String(), Serdes.String()));
        return builder.build();
    }

    static String hex(byte[] bytes) {
        return bytes == null ? "null" : HexFormat.of().formatHex(bytes);
    }

    public static void main(String[] args) throws Exception {
        String program = args[0];
        Topology topology;
        String output;
        switch (program) {
            case "count" -> { topology = count(); output = "rides-pulocation-count"; }
            case "regroup" -> { topology = regroup(); output = "rides-pickup-count"; }
            case "windowed" -> { topology = windowed(); output = "rides-pulocation-window-count"; }
            case "join" -> { topology = join(); output = "vendor_info"; }
            default -> throw new IllegalArgumentException(program);
        }
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "oracle-" + program);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        // runnel-streams' stores are in memory (persistent ones are still to
        // come): compare like with like.
        props.put(StreamsConfig.DSL_STORE_SUPPLIERS_CLASS_CONFIG, BuiltInDslStoreSuppliers.InMemoryDslStoreSuppliers.class);
        StringBuilder out = new StringBuilder();
        try (TopologyTestDriver driver = new TopologyTestDriver(topology, props)) {
            Map<String, TestInputTopic<String, String>> inputs = new HashMap<>();
            TestOutputTopic<byte[], byte[]> results = driver.createOutputTopic(output, new ByteArrayDeserializer(), new ByteArrayDeserializer());
            for (String line : Files.readAllLines(Path.of(args[1]), StandardCharsets.UTF_8)) {
                String[] f = line.split("\t", 4);
                TestInputTopic<String, String> input = inputs.computeIfAbsent(f[0], t -> driver.createInputTopic(t, new StringSerializer(), new StringSerializer()));
                input.pipeInput(f[1], f[3], Long.parseLong(f[2]));
                for (TestRecord<byte[], byte[]> r : results.readRecordsToList()) {
                    out.append(output).append('\t').append(hex(r.key())).append('\t').append(hex(r.value())).append('\t').append(r.timestamp()).append('\n');
                }
            }
        }
        System.out.print(out);
    }
}
