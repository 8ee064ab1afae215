//! A second thread that sends rows. Calls go out on single-threaded runtimes (a work-stealing one
//! spent a third of its CPU on wake-ups between threads), and one such thread is the run's ceiling
//! on a machine with a core to spare: a lane is another single-threaded runtime with its own
//! connection pool (see [`crate::api::http::on_lane`]), so its rows never cross threads per call,
//! only once when they finish.

use tokio::runtime::Handle;

/// The extra lanes to open: one per spare core, at most one (the service and the writer threads
/// want the rest).
pub fn wanted() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    usize::from(cores > 1)
}

/// A runtime on a thread of its own, running the tasks spawned on [`Lane::handle`] until it is
/// dropped; dropping it drops the tasks still on it.
pub struct Lane {
    handle: Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Lane {
    /// Starts lane `number` (1 and up; 0 is the thread that runs the command).
    pub fn start(number: usize) -> std::io::Result<Lane> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("pcbulk-lane-{number}"))
            .spawn(move || {
                crate::api::http::on_lane(number);
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(Lane {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_runs_its_tasks_on_its_own_thread_and_drops_the_rest_when_it_goes() {
        let lane = Lane::start(1).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let here = std::thread::current().id();
        let there = rt
            .block_on(lane.handle().spawn(async { std::thread::current().id() }))
            .unwrap();
        assert_ne!(here, there);
        // A task that never ends is dropped with the lane, and with it what it holds.
        let held = std::sync::Arc::new(());
        let h = std::sync::Arc::clone(&held);
        lane.handle().spawn(async move {
            let _h = h;
            std::future::pending::<()>().await
        });
        drop(lane);
        assert_eq!(std::sync::Arc::strong_count(&held), 1);
    }
}
