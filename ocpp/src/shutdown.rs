//! Graceful shutdown, as in mini-redis: every long-running task holds a [`Shutdown`] and stops
//! when the gateway's shutdown future completes.

use tokio::sync::watch;

/// Listens for the shutdown signal.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// Sends the shutdown signal.
#[derive(Debug)]
pub(crate) struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

/// A connected trigger and listener.
pub(crate) fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    /// Tells every listener to stop.
    pub(crate) fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Completes once [`ShutdownTrigger::trigger`] was called.
    pub(crate) async fn triggered(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

impl Shutdown {
    /// Completes once the signal is sent (at once if it already was).
    pub(crate) async fn recv(&mut self) {
        // An error means the trigger is gone, which also means: stop.
        let _ = self.rx.wait_for(|s| *s).await;
    }
}
