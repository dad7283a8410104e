//! A future that is polled only after it has been woken. A connection's task runs its
//! connection beside watchers that almost never fire (the idle clock, the shutdown
//! signal, the head clock); `select!` would poll every one of them on each of
//! the connection's wakes, several per request, each a timer or channel registration
//! for nothing. Wrapped in `Dormant`, a watcher is polled once to register, then again
//! only when its own waker fires: an atomic load per wake otherwise.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

pin_project_lite::pin_project! {
    pub struct Dormant<F> {
        #[pin]
        inner: F,
        alarm: Arc<Alarm>,
        // The inner future's waker: rings the alarm.
        waker: Waker,
        // The waker of the task last polling this, as the alarm holds it.
        task: Option<Waker>,
    }
}

/// Set when the inner future's waker fires; wakes the task that polls the `Dormant`.
#[derive(Default)]
struct Alarm {
    rang: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Alarm {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.rang.store(true, Ordering::Release);
        // A poisoned lock still holds the waker: a panic elsewhere must not lose a wake.
        let task = self.task.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

impl<F: Future> Dormant<F> {
    pub fn new(inner: F) -> Dormant<F> {
        let alarm = Arc::new(Alarm::default());
        let waker = Waker::from(alarm.clone());
        Dormant { inner, alarm, waker, task: None }
    }
}

impl<F: Future> Future for Dormant<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if this.task.as_ref().is_some_and(|task| task.will_wake(cx.waker())) {
            if !this.alarm.rang.swap(false, Ordering::Acquire) {
                return Poll::Pending;
            }
        } else {
            // The first poll, or a new task: the alarm wakes this one from now on, and the
            // inner future is polled (it may have rung for the old one).
            *this.task = Some(cx.waker().clone());
            *this.alarm.task.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(cx.waker().clone());
            this.alarm.rang.store(false, Ordering::Release);
        }
        this.inner.poll(&mut Context::from_waker(this.waker))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Counts its polls; never ready.
    struct Counting {
        polls: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Future for Counting {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_dormant_watcher_is_polled_once_then_only_when_woken() {
        let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut watcher = Box::pin(Dormant::new(Counting { polls: polls.clone() }));
        // A task's waker, as tokio's are: its clones will wake the same task.
        struct Task;
        impl Wake for Task {
            fn wake(self: Arc<Self>) {}
        }
        let waker = Waker::from(Arc::new(Task));
        let mut cx = Context::from_waker(&waker);
        for _ in 0..10 {
            assert!(watcher.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dormant_timer_still_fires_and_wakes_its_task() {
        let started = tokio::time::Instant::now();
        let busy = async {
            // The task is woken often for other reasons, as a busy connection is.
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::select! {
            () = busy => unreachable!(),
            () = Dormant::new(tokio::time::sleep(Duration::from_secs(5))) => {}
        }
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dormant_channel_wait_sees_the_send() {
        let (sender, mut receiver) = tokio::sync::watch::channel(());
        let waiting = tokio::spawn(async move { Dormant::new(receiver.changed()).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(5)).await;
        sender.send_replace(());
        assert!(waiting.await.unwrap_or(false));
    }
}
