//! Scenario helpers: an in-process broker on an ephemeral port, and client
//! constructors with test-friendly timeouts.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use runnel_broker::{BrokerConfig, BrokerState, ListenerConfig};
use tokio::sync::oneshot;

/// A broker running inside the test's runtime, stopped on drop.
pub struct TestBroker {
    pub bootstrap: String,
    pub state: Arc<BrokerState>,
    shutdown: Option<oneshot::Sender<()>>,
    stopped: Option<tokio::task::JoinHandle<()>>,
    config: BrokerConfig,
    dir: Arc<tempfile::TempDir>,
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(customise: impl FnOnce(&mut BrokerConfig)) -> TestBroker {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let mut config = BrokerConfig {
            data_dir: dir.path().to_path_buf(),
            listeners: vec![ListenerConfig { name: "PLAINTEXT".into(), listen: "127.0.0.1:0".parse().unwrap(), advertise: None }],
            ..BrokerConfig::default()
        };
        customise(&mut config);
        Self::open(config, dir).await
    }

    async fn open(config: BrokerConfig, dir: Arc<tempfile::TempDir>) -> TestBroker {
        let listeners = runnel_broker::bind(&config.listeners).await.unwrap();
        let bootstrap = format!("127.0.0.1:{}", listeners[0].1.local_addr.port());
        let state = Arc::new(BrokerState::open(config.clone()).unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let stopped = tokio::spawn(runnel_broker::run(state.clone(), listeners, async move {
            let _ = rx.await;
        }));
        TestBroker { bootstrap, state, shutdown: Some(tx), stopped: Some(stopped), config, dir }
    }

    /// Stops the broker and starts a new one on the same data directory
    /// (and a new port).
    pub async fn restart(mut self) -> TestBroker {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(stopped) = self.stopped.take() {
            stopped.await.unwrap();
        }
        Self::open(self.config.clone(), self.dir.clone()).await
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn client_config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap).set("message.timeout.ms", "10000").set("socket.timeout.ms", "10000");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config
}

pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    client_config(bootstrap, extra).create().expect("producer")
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap, &[]).create().expect("admin client")
}

pub fn admin_options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))
}

pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = admin(bootstrap).create_topics([&topic], &admin_options()).await.unwrap();
    for result in results {
        result.expect("topic created");
    }
}

/// Reads `count` messages from one partition, starting at `from`, failing
/// the test if they do not arrive within a deadline.
pub fn consume(bootstrap: &str, topic: &str, partition: i32, from: i64, count: usize) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = client_config(bootstrap, &[("group.id", "runnel-tests"), ("enable.auto.commit", "false")]).create().unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Offset(from)).unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    while out.len() < count {
        assert!(std::time::Instant::now() < deadline, "only {} of {count} messages arrived from {topic}/{partition}", out.len());
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => out.push(message.detach()),
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    out
}

/// Runs blocking client code off the async runtime.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

pub fn payload(message: &OwnedMessage) -> String {
    String::from_utf8(message.payload().unwrap_or_default().to_vec()).unwrap()
}
