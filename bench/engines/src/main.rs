//! fjall against redb on the workload of runnel-streams' local state
//! checkpoints: 2,000,000 changelog-shaped updates (a 9-byte key, a
//! 100-byte value) over 200,000 keys, committed and synced in batches of
//! 20,000 with a checkpoint key, then the store reopened and scanned whole,
//! as a restarting task loads it.

use std::time::Instant;

const KEYS: u64 = 200_000;
const UPDATES: u64 = 2_000_000;
const BATCH: u64 = 20_000;

fn key(i: u64) -> Vec<u8> { format!("k{:08}", i % KEYS).into_bytes() }
fn value(i: u64) -> Vec<u8> { let mut v = i.to_be_bytes().to_vec(); v.extend_from_slice(&[7u8; 92]); v }

use redb::ReadableTable;

fn main() {
    let dir = std::env::args().nth(2).unwrap();
    match std::env::args().nth(1).unwrap().as_str() {
        "fjall" => {
            let t = Instant::now();
            let ks = fjall::Config::new(&dir).open().unwrap();
            let p = ks.open_partition("s", fjall::PartitionCreateOptions::default()).unwrap();
            let mut i = 0;
            while i < UPDATES {
                let mut b = ks.batch();
                for j in i..i + BATCH { b.insert(&p, key(j), value(j)); }
                b.insert(&p, b"__checkpoint".to_vec(), i.to_be_bytes().to_vec());
                b.commit().unwrap();
                ks.persist(fjall::PersistMode::SyncAll).unwrap();
                i += BATCH;
            }
            let w = t.elapsed();
            drop(p); drop(ks);
            let t = Instant::now();
            let ks = fjall::Config::new(&dir).open().unwrap();
            let p = ks.open_partition("s", fjall::PartitionCreateOptions::default()).unwrap();
            let n = p.iter().count();
            println!("fjall: write {:?} ({:.0} updates/s), reopen+scan {} in {:?}", w, UPDATES as f64 / w.as_secs_f64(), n, t.elapsed());
        }
        "redb" => {
            let t = Instant::now();
            let table: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("s");
            let db = redb::Database::create(format!("{dir}/db")).unwrap();
            let mut i = 0;
            while i < UPDATES {
                let tx = db.begin_write().unwrap();
                { let mut tb = tx.open_table(table).unwrap();
                  for j in i..i + BATCH { tb.insert(key(j).as_slice(), value(j).as_slice()).unwrap(); }
                  tb.insert(b"__checkpoint".as_slice(), i.to_be_bytes().as_slice()).unwrap(); }
                tx.commit().unwrap();
                i += BATCH;
            }
            let w = t.elapsed();
            drop(db);
            let t = Instant::now();
            let db = redb::Database::create(format!("{dir}/db")).unwrap();
            let tx = db.begin_read().unwrap();
            let tb = tx.open_table(table).unwrap();
            let n = tb.iter().unwrap().count();
            println!("redb: write {:?} ({:.0} updates/s), reopen+scan {} in {:?}", w, UPDATES as f64 / w.as_secs_f64(), n, t.elapsed());
        }
        _ => panic!(),
    }
}
