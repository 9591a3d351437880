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
 * the order written (a value of \N is a null). runnel-streams' `oracle`
 * example prints the same.
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

    static final Consumed<String, String> STRINGS = Consumed.with(Serdes.String(), Serdes.String());
    static final Produced<String, String> TO_STRINGS = Produced.with(Serdes.String(), Serdes.String());

    static String zone(String json) {
        return json == null ? "-" : field(json, "zone");
    }

    /** Rides joined with the zone table: left, inner, and after re-keying by pickup location. */
    static Topology enrich() {
        StreamsBuilder builder = new StreamsBuilder();
        KTable<String, String> zones = builder.table("zones", STRINGS);
        KStream<String, String> rides = builder.stream("rides", STRINGS);
        Joined<String, String, String> joined = Joined.with(Serdes.String(), Serdes.String(), Serdes.String());
        rides.leftJoin(zones, (ride, z) -> field(ride, "VendorID") + "@" + zone(z), joined).to("rides-enriched", TO_STRINGS);
        rides.join(zones, (ride, z) -> field(ride, "VendorID") + "@" + zone(z), joined).to("rides-zoned", TO_STRINGS);
        rides.selectKey((key, ride) -> field(ride, "PULocationID"))
            .join(zones, (ride, z) -> field(ride, "tpep_pickup_datetime") + "@" + zone(z), joined)
            .to("pickups-zoned", TO_STRINGS);
        return builder.build();
    }

    /** The zone table joined with the notes table: inner, left and outer. */
    static Topology tables() {
        StreamsBuilder builder = new StreamsBuilder();
        KTable<String, String> zones = builder.table("zones", STRINGS);
        KTable<String, String> notes = builder.table("zone_notes", STRINGS);
        zones.join(notes, (z, n) -> zone(z) + "|" + n).toStream().to("zone-notes-inner", TO_STRINGS);
        zones.leftJoin(notes, (z, n) -> zone(z) + "|" + (n == null ? "-" : n)).toStream().to("zone-notes-left", TO_STRINGS);
        zones.outerJoin(notes, (z, n) -> zone(z) + "|" + (n == null ? "-" : n)).toStream().to("zone-notes-outer", TO_STRINGS);
        return builder.build();
    }

    /** Zones regrouped and counted per borough, a filtered and a mapped table, and the largest fare per key. */
    static Topology boroughs() {
        StreamsBuilder builder = new StreamsBuilder();
        KTable<String, String> zones = builder.table("zones", STRINGS);
        zones.groupBy((id, z) -> KeyValue.pair(field(z, "borough"), zone(z)), Grouped.with(Serdes.String(), Serdes.String()))
            .count()
            .toStream()
            .to("zones-per-borough", Produced.with(Serdes.String(), Serdes.Long()));
        zones.filter((id, z) -> field(z, "borough").equals("Manhattan")).toStream().to("manhattan-zones", TO_STRINGS);
        zones.mapValues(z -> zone(z)).toStream().to("zone-names", TO_STRINGS);
        builder.stream("rides", STRINGS)
            .groupByKey()
            .reduce((max, ride) -> Double.parseDouble(field(ride, "fare_amount")) > Double.parseDouble(field(max, "fare_amount")) ? ride : max)
            .toStream()
            .mapValues(ride -> field(ride, "fare_amount"))
            .to("max-fare", TO_STRINGS);
        return builder.build();
    }

    /** Rides split by payment type. */
    static Topology split() {
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream("rides", STRINGS)
            .split()
            .branch((key, ride) -> field(ride, "payment_type").equals("1"), Branched.withConsumer(card -> card.to("card", TO_STRINGS)))
            .branch((key, ride) -> field(ride, "payment_type").equals("2"), Branched.withConsumer(cash -> cash.to("cash", TO_STRINGS)))
            .defaultBranch(Branched.withConsumer(other -> other.mapValues(ride -> field(ride, "payment_type")).to("other", TO_STRINGS)));
        return builder.build();
    }

    static final SessionWindows SESSIONS = SessionWindows.ofInactivityGapAndGrace(Duration.ofMinutes(30), Duration.ofMinutes(10));

    /** Rides per key in sessions of 30 minutes' inactivity, counted and reduced to the largest fare. */
    static Topology sessions() {
        StreamsBuilder builder = new StreamsBuilder();
        KGroupedStream<String, String> rides = builder.stream("rides", STRINGS).groupByKey();
        rides.windowedBy(SESSIONS).count().toStream()
            .to("ride-sessions", Produced.with(WindowedSerdes.sessionWindowedSerdeFrom(String.class), Serdes.Long()));
        rides.windowedBy(SESSIONS)
            .reduce((max, ride) -> Double.parseDouble(field(ride, "fare_amount")) > Double.parseDouble(field(max, "fare_amount")) ? ride : max)
            .toStream()
            .mapValues(ride -> ride == null ? null : field(ride, "fare_amount"))
            .to("session-max-fare", Produced.with(WindowedSerdes.sessionWindowedSerdeFrom(String.class), Serdes.String()));
        return builder.build();
    }

    /** Final results only: 10-second window counts and session counts, suppressed until their windows close. */
    static Topology finals() {
        StreamsBuilder builder = new StreamsBuilder();
        KGroupedStream<String, String> rides = builder.stream("rides", STRINGS).groupByKey();
        rides.windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofSeconds(10), Duration.ofSeconds(5)))
            .count()
            .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
            .toStream()
            .to("final-window-counts", Produced.with(WindowedSerdes.timeWindowedSerdeFrom(String.class, 10_000L), Serdes.Long()));
        rides.windowedBy(SESSIONS)
            .count()
            .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
            .toStream()
            .to("final-session-counts", Produced.with(WindowedSerdes.sessionWindowedSerdeFrom(String.class), Serdes.Long()));
        return builder.build();
    }

    /** Rides left- and outer-joined with pickups at their drop-off location within 10 minutes, 2 minutes' grace. */
    static Topology outerJoins() {
        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, String> rides = builder.stream("rides", STRINGS);
        KStream<String, String> pickups = builder.stream("rides_location", STRINGS).selectKey((key, pickup) -> field(pickup, "PULocationID"));
        JoinWindows windows = JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMinutes(10), Duration.ofMinutes(2));
        StreamJoined<String, String, String> serdes = StreamJoined.with(Serdes.String(), Serdes.String(), Serdes.String());
        rides.leftJoin(pickups, (ride, pickup) -> field(ride, "VendorID") + "|" + (pickup == null ? "-" : field(pickup, "tpep_pickup_datetime")), windows, serdes)
            .to("rides-left-pickups", TO_STRINGS);
        rides.outerJoin(pickups, (ride, pickup) -> (ride == null ? "-" : field(ride, "VendorID")) + "|" + (pickup == null ? "-" : field(pickup, "tpep_pickup_datetime")), windows, serdes)
            .to("rides-outer-pickups", TO_STRINGS);
        return builder.build();
    }

    /** Rides joined with the zone of their pickup location, from a global table: left and inner. */
    static Topology global() {
        StreamsBuilder builder = new StreamsBuilder();
        GlobalKTable<String, String> zones = builder.globalTable("zones", STRINGS);
        KStream<String, String> rides = builder.stream("rides", STRINGS);
        rides.leftJoin(zones, (key, ride) -> field(ride, "PULocationID"), (ride, z) -> field(ride, "VendorID") + "@" + zone(z)).to("rides-pickup-zone", TO_STRINGS);
        rides.join(zones, (key, ride) -> field(ride, "PULocationID"), (ride, z) -> field(ride, "VendorID") + "@" + zone(z)).to("rides-pickup-zoned", TO_STRINGS);
        return builder.build();
    }

    /** Rides per key in sliding windows of 10 minutes with 2 minutes' grace: every update, and final results. */
    static Topology sliding() {
        StreamsBuilder builder = new StreamsBuilder();
        KTable<Windowed<String>, Long> counts = builder.stream("rides", STRINGS)
            .groupByKey()
            .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(Duration.ofMinutes(10), Duration.ofMinutes(2)))
            .count();
        Produced<Windowed<String>, Long> windowed = Produced.with(WindowedSerdes.timeWindowedSerdeFrom(String.class, 600_000L), Serdes.Long());
        counts.toStream().to("sliding-counts", windowed);
        counts.suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded())).toStream().to("sliding-finals", windowed);
        return builder.build();
    }

    /** Trips joined with the zone their value names (a foreign key): inner and left. */
    @SuppressWarnings("deprecation")
    static Topology foreignKey() {
        StreamsBuilder builder = new StreamsBuilder();
        KTable<String, String> zones = builder.table("zones", STRINGS);
        KTable<String, String> trips = builder.table("trips", STRINGS);
        trips.join(zones, trip -> field(trip, "PULocationID"), (trip, z) -> field(trip, "VendorID") + "@" + zone(z)).toStream().to("trip-zones-inner", TO_STRINGS);
        trips.leftJoin(zones, trip -> field(trip, "PULocationID"), (trip, z) -> field(trip, "VendorID") + "@" + zone(z)).toStream().to("trip-zones-left", TO_STRINGS);
        return builder.build();
    }

    static String hex(byte[] bytes) {
        return bytes == null ? "null" : HexFormat.of().formatHex(bytes);
    }

    public static void main(String[] args) throws Exception {
        String program = args[0];
        Topology topology;
        List<String> outputs;
        switch (program) {
            case "count" -> { topology = count(); outputs = List.of("rides-pulocation-count"); }
            case "regroup" -> { topology = regroup(); outputs = List.of("rides-pickup-count"); }
            case "windowed" -> { topology = windowed(); outputs = List.of("rides-pulocation-window-count"); }
            case "join" -> { topology = join(); outputs = List.of("vendor_info"); }
            case "enrich" -> { topology = enrich(); outputs = List.of("rides-enriched", "rides-zoned", "pickups-zoned"); }
            case "tables" -> { topology = tables(); outputs = List.of("zone-notes-inner", "zone-notes-left", "zone-notes-outer"); }
            case "boroughs" -> { topology = boroughs(); outputs = List.of("zones-per-borough", "manhattan-zones", "zone-names", "max-fare"); }
            case "split" -> { topology = split(); outputs = List.of("card", "cash", "other"); }
            case "sessions" -> { topology = sessions(); outputs = List.of("ride-sessions", "session-max-fare"); }
            case "sliding" -> { topology = sliding(); outputs = List.of("sliding-counts", "sliding-finals"); }
            case "fk" -> { topology = foreignKey(); outputs = List.of("trip-zones-inner", "trip-zones-left"); }
            case "global" -> { topology = global(); outputs = List.of("rides-pickup-zone", "rides-pickup-zoned"); }
            case "outer" -> { topology = outerJoins(); outputs = List.of("rides-left-pickups", "rides-outer-pickups"); }
            case "finals" -> { topology = finals(); outputs = List.of("final-window-counts", "final-session-counts"); }
            default -> throw new IllegalArgumentException(program);
        }
        if (args[1].equals("--describe")) {
            System.out.print(topology.describe());
            return;
        }
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "oracle-" + program);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        // Left and outer stream joins emit unmatched records as soon as their
        // windows close, not at most once a second of wall-clock time, as
        // runnel-streams does.
        props.put("__emit.interval.ms.kstreams.outer.join.spurious.results.fix__", 0L);
        // runnel-streams' stores are in memory (persistent ones are still to
        // come): compare like with like.
        props.put(StreamsConfig.DSL_STORE_SUPPLIERS_CLASS_CONFIG, BuiltInDslStoreSuppliers.InMemoryDslStoreSuppliers.class);
        StringBuilder out = new StringBuilder();
        try (TopologyTestDriver driver = new TopologyTestDriver(topology, props)) {
            Map<String, TestInputTopic<String, String>> inputs = new HashMap<>();
            Map<String, TestOutputTopic<byte[], byte[]>> results = new LinkedHashMap<>();
            for (String output : outputs) {
                results.put(output, driver.createOutputTopic(output, new ByteArrayDeserializer(), new ByteArrayDeserializer()));
            }
            for (String line : Files.readAllLines(Path.of(args[1]), StandardCharsets.UTF_8)) {
                String[] f = line.split("\t", 4);
                TestInputTopic<String, String> input = inputs.computeIfAbsent(f[0], t -> driver.createInputTopic(t, new StringSerializer(), new StringSerializer()));
                try {
                    input.pipeInput(f[1], f[3].equals("\\N") ? null : f[3], Long.parseLong(f[2]));
                } catch (IllegalArgumentException notRead) {
                    // A topic this program does not read: runnel's driver ignores it too.
                    continue;
                }
                for (Map.Entry<String, TestOutputTopic<byte[], byte[]>> output : results.entrySet()) {
                    for (TestRecord<byte[], byte[]> r : output.getValue().readRecordsToList()) {
                        out.append(output.getKey()).append('\t').append(hex(r.key())).append('\t').append(hex(r.value())).append('\t').append(r.timestamp()).append('\n');
                    }
                }
            }
        }
        System.out.print(out);
    }
}
