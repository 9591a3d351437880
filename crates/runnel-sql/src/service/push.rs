//! Push queries: a `SELECT ... EMIT CHANGES` runs as a transient streams
//! application (`_confluent-ksql-<service id>transient_<id>`) whose rows go
//! through a bounded channel to the HTTP response. When the client leaves,
//! the limit is reached or `/close-query` names it, the application stops
//! and its internal topics and consumer group are deleted.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use runnel_streams::{KafkaStreams, StreamsBuilder};
use tokio::sync::{mpsc, Notify};

use super::entities::codes;
use super::print::Printing;
use super::pull::PullResult;
use super::{Refusal, ServiceError, SqlService};
use crate::ast::Statement;
use crate::engine::Outcome;
use crate::parser::parse;
use crate::row::Row;
use crate::types::SqlType;

/// How many rows wait for a slow client before the query's stream thread
/// waits too.
const ROW_BUFFER: usize = 1_024;

/// The push queries running on this server, each with the signal that
/// closes it.
#[derive(Default)]
pub struct PushQueries {
    open: Mutex<HashMap<String, Arc<Notify>>>,
    next: AtomicU64,
}

impl PushQueries {
    /// Closes the query `id`; `false` if no such query runs.
    pub fn close(&self, id: &str) -> bool {
        match self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(id) {
            Some(closed) => {
                closed.notify_one();
                true
            }
            None => false,
        }
    }

    /// A number for the next query's id.
    pub(super) fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Closes every push query.
    pub fn close_all(&self) {
        for closed in self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values() {
            closed.notify_one();
        }
    }
}

/// What a query answers.
pub enum Answer {
    /// A push query, running until its client leaves.
    Push(PushQuery),
    /// A pull query's rows.
    Pull(PullResult),
    /// A topic's records as text (`PRINT`).
    Print(Printing),
}

/// A running push query. Hand it back to [`SqlService::end_push`] once
/// its response ends.
pub struct PushQuery {
    /// Its id (`transient_<SOURCE>_<n>`).
    pub id: String,
    /// Its columns, in order.
    pub columns: Vec<(String, SqlType)>,
    /// How many rows it sends before it ends (`LIMIT`).
    pub limit: Option<u64>,
    /// Its rows as the query produces them.
    pub rows: mpsc::Receiver<Row>,
    /// Signalled by `/close-query`.
    pub closed: Arc<Notify>,
    streams: KafkaStreams,
    application_id: String,
}

impl SqlService {
    /// Runs the query of a `/query` or `/query-stream` request: a push
    /// query starts, a pull query answers at once.
    pub fn query(&self, text: &str, properties: &BTreeMap<String, String>) -> Result<Answer, Refusal> {
        let refuse = |code: u32, message: String| Refusal::new(code, message, Some(text.trim()));
        let mut parsed = parse(text).map_err(|e| refuse(codes::BAD_STATEMENT, e.to_string()))?;
        if parsed.len() != 1 {
            return Err(refuse(codes::BAD_STATEMENT, format!("Expected exactly one statement, found {}.", parsed.len())));
        }
        let parsed = parsed.remove(0);
        if let Statement::Print { topic, from_beginning, interval, limit } = &parsed.statement {
            return self.print(text, topic, *from_beginning, *interval, *limit).map(Answer::Print);
        }
        let Statement::Select(query) = &parsed.statement else {
            return Err(refuse(codes::BAD_STATEMENT, "Only SELECT and PRINT statements run on this endpoint; send other statements to /ksql.".into()));
        };
        if query.emit.is_none() {
            return self.pull(text, query).map(Answer::Pull);
        }
        let plan = match self.lock().engine.execute_statement(&parsed) {
            Ok(Outcome::Transient(plan)) => plan,
            Ok(_) => return Err(refuse(codes::BAD_STATEMENT, "not a query".into())),
            Err(e) => return Err(refuse(super::entities::code_of(&e), e.to_string())),
        };
        let number = self.push.next_id();
        let id = format!("transient_{}_{}{number}", plan.source_names()[0], super::now_ms());
        let application_id = format!("_confluent-ksql-{}{id}", self.config.service_id);
        let (sender, rows) = mpsc::channel(ROW_BUFFER);
        let builder = StreamsBuilder::new();
        // The stream thread waits while the client is slow; once the
        // response has ended, rows are dropped.
        plan.build_push(&builder, Arc::new(move |row| drop(sender.blocking_send(row.value))));
        let config = self.streams_config(&application_id, properties);
        let streams = KafkaStreams::start(builder.build(), config).map_err(|e| Refusal::from(ServiceError::from(e)))?;
        let closed = Arc::new(Notify::new());
        self.push.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id.clone(), closed.clone());
        Ok(Answer::Push(PushQuery { id, columns: plan.output.value.clone(), limit: query.limit, rows, closed, streams, application_id }))
    }

    /// Stops a push query whose response ended, and deletes what its
    /// application left on the cluster.
    pub fn end_push(&self, query: PushQuery) {
        let PushQuery { id, rows, streams, application_id, .. } = query;
        self.push.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
        // Unblocks a stream thread waiting to hand over a row.
        drop(rows);
        if let Err(error) = streams.close() {
            tracing::warn!(query = id, %error, "a push query stopped with an error");
        }
        if let Err(error) = self.cluster.delete_internal_topics(&application_id).and_then(|_| self.cluster.delete_group(&application_id)) {
            tracing::warn!(query = id, %error, "cannot clean up after a push query");
        }
    }

    /// Closes the push query `id` (`/close-query`); `false` if none runs.
    pub fn close_push(&self, id: &str) -> bool {
        self.push.close(id)
    }
}
