// Drives a Kafka-compatible broker with kafkajs: admin, keyed records with
// headers in the codecs kafkajs ships or has a pure-JavaScript codec for,
// a consumer group that commits, and a rebalance when a member leaves. It
// prints what it saw, one line per fact, so runs against two brokers can
// be compared, and ends with "ALL OK"; any failure exits non-zero.
const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require("kafkajs");
CompressionCodecs[CompressionTypes.Snappy] = require("kafkajs-snappy");

const [bootstrap, prefix] = process.argv.slice(2);
const PARTITIONS = 3;
const kafka = new Kafka({ clientId: "runnel-probe", brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 10 } });
const topic = `${prefix}-kafkajs`;
const group = `${prefix}-kafkajs-group`;

async function waitFor(what, done, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function main() {
  const admin = kafka.admin();
  await admin.connect();
  console.log(`create: ${await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }], waitForLeaders: true })}`);
  console.log(`create again: ${await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }] })}`);
  console.log("admin ok");

  const codecs = [["none", CompressionTypes.None], ["gzip", CompressionTypes.GZIP], ["snappy", CompressionTypes.Snappy]];
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let sent = 0;
  // PROBE_BASE_MS (the same for both brokers' runs), else the start of
  // this hour: recent enough that Apache Kafka's retention keeps the records.
  const hour = Number(process.env.PROBE_BASE_MS) || Math.floor(Date.now() / 3600000) * 3600000;
  for (const [name, compression] of codecs) {
    const messages = [0, 1, 2, 3].map((i) => ({
      key: `ride-${i}`, value: JSON.stringify({ codec: name, i }), partition: i % PARTITIONS,
      headers: { codec: name }, timestamp: String(hour + i),
    }));
    await producer.send({ topic, compression, acks: -1, messages });
    sent += messages.length;
    console.log(`codec ${name} ok`);
  }
  await producer.disconnect();

  const seen = [];
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      seen.push(`record ${partition}/${message.offset} key=${message.key} value=${message.value} header=codec=${message.headers.codec} time=${message.timestamp}`);
      await consumer.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }]);
    },
  });
  await waitFor("every record consumed", () => seen.length >= sent);
  await consumer.disconnect();
  seen.sort().forEach((line) => console.log(line));
  const committed = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  committed[0].partitions.sort((a, b) => a.partition - b.partition).forEach((p) => console.log(`committed ${p.partition}: ${p.offset}`));

  // Two members share the partitions; when one leaves, the other takes all.
  const owned = {};
  const member = async (name) => {
    const c = kafka.consumer({ groupId: `${group}-split`, sessionTimeout: 10000, heartbeatInterval: 300, rebalanceTimeout: 10000 });
    c.on(c.events.GROUP_JOIN, (e) => { owned[name] = (e.payload.memberAssignment[topic] || []).length; });
    await c.connect();
    await c.subscribe({ topic, fromBeginning: true });
    await c.run({ eachMessage: async () => {} });
    return c;
  };
  const a = await member("a");
  const b = await member("b");
  await waitFor("two members split the partitions", () => owned.a > 0 && owned.b > 0 && owned.a + owned.b === PARTITIONS);
  console.log("group split ok");
  await b.disconnect();
  await waitFor("the remaining member takes over", () => owned.a === PARTITIONS);
  console.log("takeover ok");
  await a.disconnect();
  await admin.disconnect();
  console.log("ALL OK");
}

main().catch((e) => { console.error(e); process.exit(1); });
