//! The link between admin writes and the Redis sync task (`sync`): kept
//! apart so the control plane can hold it without depending on the task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tokio::sync::Notify;

/// Link between admin writes and the sync task.
#[derive(Default)]
pub struct SyncHandle {
    /// A local change is waiting to be published.
    pub(super) dirty: AtomicBool,
    pub(super) changed: Notify,
    /// The id of the shared document this instance's config corresponds
    /// to (applied or published by us); `None` before the first one.
    applied: Mutex<Option<String>>,
}

impl SyncHandle {
    /// Called after every committed local admin write.
    pub fn local_change(&self) {
        self.dirty.store(true, Ordering::SeqCst);
        self.changed.notify_one();
    }

    pub(super) fn applied(&self) -> Option<String> {
        self.applied.lock().ok().and_then(|a| a.clone())
    }

    pub(super) fn set_applied(&self, id: String) {
        if let Ok(mut a) = self.applied.lock() {
            *a = Some(id);
        }
    }
}
