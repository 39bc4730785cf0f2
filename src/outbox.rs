//! A bounded single-producer, single-consumer event queue: each connection's
//! outbox. Like a bounded `tokio::sync::mpsc` channel with one sender, but its
//! storage is allocated only while events wait, so an idle connection costs
//! a few dozen bytes instead of a preallocated block of slots (measured:
//! about 4 KiB per connection with `mpsc`, see docs/performance.md).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

/// Why `try_send` gave the event back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The queue holds `cap` events already.
    Full(T),
    /// The receiver is closed or gone.
    Closed(T),
}

/// Why `try_recv` returned nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing waiting right now.
    Empty,
    /// Nothing waiting and the sender is gone (or the queue closed).
    Disconnected,
}

#[derive(Debug)]
struct State<T> {
    queue: VecDeque<T>,
    /// The receiver, parked in `recv`.
    waker: Option<Waker>,
    /// No more sends: the receiver closed it or the sender is gone.
    closed: bool,
}

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<State<T>>,
    cap: usize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sending half.
#[derive(Debug)]
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving half.
#[derive(Debug)]
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// A queue that holds at most `cap` events.
pub fn channel<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let state = State { queue: VecDeque::new(), waker: None, closed: false };
    let shared = Arc::new(Shared { state: Mutex::new(state), cap: cap.max(1) });
    (Sender { shared: shared.clone() }, Receiver { shared })
}

impl<T> Sender<T> {
    /// Queues an event without waiting.
    pub fn try_send(&self, event: T) -> Result<(), TrySendError<T>> {
        let mut st = self.shared.lock();
        if st.closed {
            return Err(TrySendError::Closed(event));
        }
        if st.queue.len() >= self.shared.cap {
            return Err(TrySendError::Full(event));
        }
        st.queue.push_back(event);
        let waker = st.waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.closed = true;
        let waker = st.waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// The next event; `None` once the queue is closed and empty.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| {
            let mut st = self.shared.lock();
            if let Some(event) = st.queue.pop_front() {
                return Poll::Ready(Some(event));
            }
            if st.closed {
                return Poll::Ready(None);
            }
            match &mut st.waker {
                Some(w) => w.clone_from(cx.waker()),
                None => st.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut st = self.shared.lock();
        match st.queue.pop_front() {
            Some(event) => {
                if st.queue.is_empty() && st.queue.capacity() > 64 {
                    // A burst is over: give its memory back.
                    st.queue.shrink_to(8);
                }
                Ok(event)
            }
            None if st.closed => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Refuses further sends; what is queued can still be received.
    pub fn close(&mut self) {
        self.shared.lock().closed = true;
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order_bounds_and_closes() {
        let (tx, mut rx) = channel(2);
        assert_eq!(tx.try_send(1), Ok(()));
        assert_eq!(tx.try_send(2), Ok(()));
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        let waiting = tokio::spawn(async move { (rx.recv().await, rx.recv().await) });
        tokio::task::yield_now().await;
        assert_eq!(tx.try_send(4), Ok(()));
        drop(tx);
        assert_eq!(waiting.await.ok(), Some((Some(4), None)));
    }

    #[test]
    fn a_closed_receiver_refuses_sends_but_keeps_what_is_queued() {
        let (tx, mut rx) = channel(4);
        assert_eq!(tx.try_send("a"), Ok(()));
        rx.close();
        assert_eq!(tx.try_send("b"), Err(TrySendError::Closed("b")));
        assert_eq!(rx.try_recv(), Ok("a"));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }
}
