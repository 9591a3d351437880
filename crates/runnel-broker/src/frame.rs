//! Kafka framing: a 4-byte big-endian size, then that many bytes.
//!
//! Memory is bounded three ways. Sizes outside `1..=socket.request.max.bytes`
//! are refused before any body is buffered. Every frame reserves its size
//! from a [`MemoryBudget`] shared by all connections
//! (`queued.max.request.bytes`) before its body is read, so while the
//! budget is spent connections stop reading. And a frame's buffer grows
//! with the bytes that actually arrive, never to its declared size up
//! front. An idle connection holds no buffer at all: it waits for
//! readiness, not in a read.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a connection's byte stream cannot be framed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {size} is outside 1..={max} (socket.request.max.bytes)")]
    BadSize { size: i32, max: usize },
    #[error("connection closed mid-frame")]
    Truncated,
    #[error("no request for {0:?} (connections.max.idle.ms)")]
    Idle(Duration),
    #[error("request stopped arriving mid-frame for {0:?}")]
    Stalled(Duration),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Bytes that requests in flight may hold across every connection.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    semaphore: Arc<Semaphore>,
    total: usize,
}

impl MemoryBudget {
    pub fn new(total: usize) -> MemoryBudget {
        let total = total.clamp(1, u32::MAX as usize);
        MemoryBudget { semaphore: Arc::new(Semaphore::new(total)), total }
    }

    /// Waits until `bytes` (at most the whole budget) can be reserved.
    async fn reserve(&self, bytes: usize) -> OwnedSemaphorePermit {
        let permits = bytes.clamp(1, self.total) as u32;
        self.semaphore.clone().acquire_many_owned(permits).await.expect("the budget's semaphore is never closed")
    }

    /// Bytes not reserved by any request right now.
    #[cfg(test)]
    fn available(&self) -> usize {
        self.semaphore.available_permits()
    }
}

/// A request body, holding its share of the memory budget until dropped.
#[derive(Debug)]
pub struct Frame {
    pub body: Bytes,
    _reservation: OwnedSemaphorePermit,
}

/// Limits a connection reads under.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    /// `socket.request.max.bytes`
    pub max_size: usize,
    /// Close a connection that sends nothing for this long between frames.
    pub idle: Duration,
    /// Close a connection whose frame stops arriving for this long.
    pub stall: Duration,
}

/// How much a connection reads at a time when it has no frame in hand:
/// enough for many small pipelined requests in one system call.
const READ_AHEAD: usize = 8 * 1024;
/// Smallest step a large frame's buffer grows by.
const MIN_GROWTH: usize = 64 * 1024;

/// Reads frames from one connection.
#[derive(Debug, Default)]
pub struct FrameReader {
    /// Bytes read but not yet framed; empty, with no allocation, between
    /// requests.
    inbox: BytesMut,
}

impl FrameReader {
    /// Reads the next frame. `Ok(None)` is a clean close between frames.
    pub async fn next(&mut self, socket: &OwnedReadHalf, limits: &FrameLimits, budget: &MemoryBudget) -> Result<Option<Frame>, FrameError> {
        while self.inbox.len() < 4 {
            let waiting = if self.inbox.is_empty() { Waiting::Request } else { Waiting::MidFrame };
            if read_some(socket, &mut self.inbox, waiting, limits, |inbox| inbox.reserve(READ_AHEAD)).await? == 0 {
                return if self.inbox.is_empty() { Ok(None) } else { Err(FrameError::Truncated) };
            }
        }
        let size = i32::from_be_bytes(self.inbox[..4].try_into().expect("4 bytes"));
        if size <= 0 || size as usize > limits.max_size {
            return Err(FrameError::BadSize { size, max: limits.max_size });
        }
        let size = size as usize;
        let reservation = budget.reserve(size).await;
        self.inbox.advance(4);
        let body = if self.inbox.len() >= size {
            self.inbox.split_to(size).freeze()
        } else {
            // The rest of the frame is read into a buffer of its own that
            // doubles as bytes arrive, capped at the frame's size.
            let mut body = Vec::with_capacity(size.min(self.inbox.len().max(MIN_GROWTH)));
            body.extend_from_slice(&self.inbox);
            self.inbox = BytesMut::new();
            while body.len() < size {
                let remaining = size - body.len();
                if body.capacity() == body.len() {
                    body.reserve_exact(remaining.min(body.len().max(MIN_GROWTH)));
                }
                let room = remaining.min(body.capacity() - body.len());
                if read_some(socket, &mut (&mut body).limit(room), Waiting::MidFrame, limits, |_| {}).await? == 0 {
                    return Err(FrameError::Truncated);
                }
            }
            Bytes::from(body)
        };
        if self.inbox.is_empty() {
            // Let an idle connection hold no buffer.
            self.inbox = BytesMut::new();
        }
        Ok(Some(Frame { body, _reservation: reservation }))
    }
}

/// What a connection is waiting for, which decides its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// The start of the next request.
    Request,
    /// The rest of a request already begun.
    MidFrame,
}

/// Waits until the socket is readable, then reads what it has into `buf`
/// after `make_room` has grown it: an idle connection allocates only
/// once data is there. Returns 0 at end of stream.
async fn read_some<B: BufMut>(
    socket: &OwnedReadHalf,
    buf: &mut B,
    waiting: Waiting,
    limits: &FrameLimits,
    make_room: impl Fn(&mut B),
) -> Result<usize, FrameError> {
    let timeout = if waiting == Waiting::Request { limits.idle } else { limits.stall };
    loop {
        match tokio::time::timeout(timeout, socket.readable()).await {
            Err(_) if waiting == Waiting::Request => return Err(FrameError::Idle(timeout)),
            Err(_) => return Err(FrameError::Stalled(timeout)),
            Ok(ready) => ready?,
        }
        make_room(buf);
        match socket.try_read_buf(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    const LIMITS: FrameLimits = FrameLimits { max_size: 1 << 20, idle: Duration::from_secs(5), stall: Duration::from_millis(300) };

    async fn pair() -> (OwnedReadHalf, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (read, write) = server.into_split();
        std::mem::forget(write);
        (read, client)
    }

    #[tokio::test]
    async fn frames_and_errors() {
        let budget = MemoryBudget::new(1 << 20);
        let (socket, mut client) = pair().await;
        let mut reader = FrameReader::default();
        client.write_all(&[0, 0, 0, 2, 7, 8, 0, 0, 0, 1, 9]).await.unwrap();
        assert_eq!(reader.next(&socket, &LIMITS, &budget).await.unwrap().unwrap().body.as_ref(), &[7, 8]);
        assert_eq!(reader.next(&socket, &LIMITS, &budget).await.unwrap().unwrap().body.as_ref(), &[9]);
        client.write_all(&[0, 0, 0, 3, 1]).await.unwrap();
        drop(client);
        assert!(matches!(reader.next(&socket, &LIMITS, &budget).await, Err(FrameError::Truncated)));

        for bad in [[0x7f, 0, 0, 0], [0xff, 0xff, 0xff, 0xff], [0, 0, 0, 0]] {
            let (socket, mut client) = pair().await;
            client.write_all(&bad).await.unwrap();
            assert!(matches!(FrameReader::default().next(&socket, &LIMITS, &budget).await, Err(FrameError::BadSize { .. })));
        }
        let (socket, client) = pair().await;
        drop(client);
        assert!(FrameReader::default().next(&socket, &LIMITS, &budget).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_large_frame_arrives_in_pieces_and_holds_its_reservation() {
        let budget = MemoryBudget::new(1 << 20);
        let (socket, mut client) = pair().await;
        let body: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let sender = tokio::spawn(async move {
            client.write_all(&(body.len() as i32).to_be_bytes()).await.unwrap();
            for chunk in body.chunks(70_000) {
                client.write_all(chunk).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            client
        });
        let frame = FrameReader::default().next(&socket, &LIMITS, &budget).await.unwrap().unwrap();
        assert_eq!(frame.body.len(), 300_000);
        assert!(frame.body.iter().enumerate().all(|(i, b)| *b == i as u8));
        assert_eq!(budget.available(), (1 << 20) - 300_000);
        drop(frame);
        assert_eq!(budget.available(), 1 << 20);
        drop(sender.await.unwrap());
    }

    #[tokio::test]
    async fn a_stalled_frame_and_an_idle_connection_time_out() {
        let budget = MemoryBudget::new(1 << 20);
        let (socket, mut client) = pair().await;
        client.write_all(&[0, 0, 0, 100, 1, 2]).await.unwrap();
        assert!(matches!(FrameReader::default().next(&socket, &LIMITS, &budget).await, Err(FrameError::Stalled(_))));
        assert_eq!(budget.available(), 1 << 20, "a stalled frame gives its reservation back");
        let (socket, _client) = pair().await;
        let idle = FrameLimits { idle: Duration::from_millis(200), ..LIMITS };
        assert!(matches!(FrameReader::default().next(&socket, &idle, &budget).await, Err(FrameError::Idle(_))));
    }

    #[tokio::test]
    async fn frames_wait_while_the_budget_is_spent() {
        let budget = MemoryBudget::new(1000);
        let (socket, mut client) = pair().await;
        client.write_all(&[0, 0, 3, 0xe8]).await.unwrap();
        client.write_all(&[5; 1000]).await.unwrap();
        client.write_all(&[0, 0, 0, 1, 6]).await.unwrap();
        let mut reader = FrameReader::default();
        let first = reader.next(&socket, &LIMITS, &budget).await.unwrap().unwrap();
        assert_eq!(budget.available(), 0);
        let blocked = tokio::time::timeout(Duration::from_millis(100), reader.next(&socket, &LIMITS, &budget)).await;
        assert!(blocked.is_err(), "the next frame waits for memory");
        drop(first);
        let second = reader.next(&socket, &LIMITS, &budget).await.unwrap().unwrap();
        assert_eq!(second.body.as_ref(), &[6]);
    }
}
