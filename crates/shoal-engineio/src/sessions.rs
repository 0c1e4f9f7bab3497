//! The table of live sessions, sharded so that lookups on different sessions do not
//! contend.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use shoal_engineio_proto::Sid;

use crate::session::Session;

const SHARDS: usize = 32;

/// Sids end in 96 random bits: any 8 of their bytes are a good hash already.
#[derive(Default)]
pub(crate) struct SidHasher(u64);

impl Hasher for SidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
}

type Shard<D> = Mutex<HashMap<Sid, Arc<Session<D>>, BuildHasherDefault<SidHasher>>>;

pub(crate) struct Sessions<D> {
    shards: Box<[Shard<D>]>,
    count: AtomicUsize,
}

impl<D> Sessions<D> {
    pub(crate) fn new() -> Self {
        Sessions { shards: (0..SHARDS).map(|_| Mutex::new(HashMap::default())).collect(), count: AtomicUsize::new(0) }
    }

    fn shard(&self, sid: &Sid) -> &Shard<D> {
        let b = sid.as_str().as_bytes();
        let i = usize::from(b[b.len() - 1]) ^ usize::from(b[b.len() - 2]) << 3;
        &self.shards[i % SHARDS]
    }

    pub(crate) fn get(&self, sid: &Sid) -> Option<Arc<Session<D>>> {
        self.shard(sid).lock().get(sid).cloned()
    }

    pub(crate) fn insert(&self, session: Arc<Session<D>>) {
        let sid = session.id();
        if self.shard(&sid).lock().insert(sid, session).is_none() {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn remove(&self, sid: &Sid) -> Option<Arc<Session<D>>> {
        let s = self.shard(sid).lock().remove(sid);
        if s.is_some() {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
        s
    }

    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn all(&self) -> Vec<Arc<Session<D>>> {
        let mut out = Vec::with_capacity(self.len());
        for shard in self.shards.iter() {
            out.extend(shard.lock().values().cloned());
        }
        out
    }
}
