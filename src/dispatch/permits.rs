//! Call permits (`--concurrency`) handed out lowest row first: with one permit, rows are attempted
//! in input order however the runtime schedules their tasks. A tokio semaphore is first come, first
//! served, and rows running as parallel tasks come in any order.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// Permits for calls on the wire.
pub struct Permits {
    state: Mutex<State>,
}

struct State {
    free: usize,
    /// Waiting callers by (row, arrival); the first is served next.
    waiting: BTreeMap<(usize, u64), oneshot::Sender<()>>,
    arrivals: u64,
}

/// A permit; given back (to the lowest row waiting) when dropped.
pub struct Permit<'p>(&'p Permits);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// A caller waiting for a permit. If it gives up (its future is dropped), it leaves the queue, and
/// a permit already handed to it is passed on.
struct Waiting<'p> {
    permits: &'p Permits,
    key: (usize, u64),
    rx: oneshot::Receiver<()>,
    served: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.served {
            return;
        }
        let removed = {
            let mut st = self.permits.lock();
            st.waiting.remove(&self.key).is_some()
        };
        if !removed && self.rx.try_recv().is_ok() {
            self.permits.release();
        }
    }
}

impl Permits {
    pub fn new(n: usize) -> Self {
        Permits {
            state: Mutex::new(State {
                free: n.max(1),
                waiting: BTreeMap::new(),
                arrivals: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a freed permit to the lowest row waiting, or keeps it free.
    fn release(&self) {
        let mut st = self.lock();
        while let Some((_, tx)) = st.waiting.pop_first() {
            if tx.send(()).is_ok() {
                return;
            }
        }
        st.free += 1;
    }

    /// Waits for a permit for a call of `row`.
    pub async fn acquire(&self, row: usize) -> Permit<'_> {
        let mut waiting = {
            let mut st = self.lock();
            if st.free > 0 && st.waiting.is_empty() {
                st.free -= 1;
                return Permit(self);
            }
            st.arrivals += 1;
            let key = (row, st.arrivals);
            let (tx, rx) = oneshot::channel();
            st.waiting.insert(key, tx);
            Waiting {
                permits: self,
                key,
                rx,
                served: false,
            }
        };
        // The sender is only dropped after sending: the permit is ours.
        let _ = (&mut waiting.rx).await;
        waiting.served = true;
        Permit(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_freed_permit_goes_to_the_lowest_row_waiting() {
        let p = Arc::new(Permits::new(1));
        let held = p.acquire(1).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for row in [9, 3, 7] {
            let (p, o) = (Arc::clone(&p), Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                let _permit = p.acquire(row).await;
                o.lock().unwrap().push(row);
            }));
            tokio::task::yield_now().await;
        }
        while p.lock().waiting.len() < 3 {
            tokio::task::yield_now().await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![3, 7, 9]);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_passes_its_permit_on() {
        let p = Permits::new(1);
        let held = p.acquire(1).await;
        {
            let f = p.acquire(2);
            tokio::pin!(f);
            assert!(futures::poll!(f.as_mut()).is_pending());
            drop(held); // handed to row 2, which then gives up
        }
        let _again = p.acquire(5).await; // would hang if the permit were lost
    }
}
