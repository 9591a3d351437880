//! Property tests: arbitrary bytes after a valid header, for every API and
//! version the broker advertises, never panic the request path; the
//! broker answers or refuses, and keeps serving.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use runnel_broker::request::{handle_frame, SUPPORTED_APIS};
use runnel_broker::{BrokerConfig, BrokerState, Listener};

fn state() -> (Arc<BrokerState>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig { data_dir: dir.path().to_path_buf(), ..BrokerConfig::default() };
    (Arc::new(BrokerState::open(config).unwrap()), dir)
}

fn listener() -> Listener {
    Listener { name: "PLAINTEXT".into(), local_addr: "127.0.0.1:9092".parse().unwrap(), advertised_host: "localhost".into(), advertised_port: 9092 }
}

/// A frame body: a plausible header for `api`/`version`, then `tail`.
fn frame(api: i16, version: i16, tail: &[u8]) -> Bytes {
    let mut body = BytesMut::new();
    body.put_i16(api);
    body.put_i16(version);
    body.put_i32(1);
    body.put_i16(4);
    body.put_slice(b"fuzz");
    body.put_slice(tail);
    body.freeze()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_request_bodies_never_panic(api_index in 0..SUPPORTED_APIS.len(), version_offset in 0i16..20, tail in proptest::collection::vec(any::<u8>(), 0..200)) {
        let (key, min, max) = SUPPORTED_APIS[api_index];
        let version = min + version_offset % (max - min + 1);
        let (state, _dir) = state();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        runtime.block_on(async {
            let outcome = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                if let Ok(Some(pending)) = handle_frame(&state, &listener(), peer, frame(key as i16, version, &tail)).await {
                    let _ = pending.await;
                }
            })
            .await;
            // A JoinGroup or a long-polling Fetch may legitimately wait;
            // what matters is that nothing panicked.
            let _ = outcome;
        });
    }

    #[test]
    fn arbitrary_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        let (state, _dir) = state();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        runtime.block_on(async {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                if let Ok(Some(pending)) = handle_frame(&state, &listener(), peer, Bytes::from(bytes)).await {
                    let _ = pending.await;
                }
            })
            .await;
        });
    }
}
