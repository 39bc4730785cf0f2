//! A bounded single-producer, single-consumer event queue: each connection's
//! outbox. Like a bounded `tokio::sync::mpsc` channel with one sender, but its
//! storage is allocated only while events wait, so an idle connection costs
//! a few dozen bytes instead of a preallocated block of slots (measured:
//! about 4 KiB per connection with `mpsc`, see docs/performance.md).
//!
//! Besides events it carries an *alarm*: the server's order to close (a slow
//! consumer, a replaced connection, shutdown). The alarm overtakes queued
//! events and wakes the receiver like an event does, so a connection waits on
//! one queue instead of polling a separate cancellation signal (whose shared
//! lock showed in the relay profile) on every turn of its loop.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

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

/// What [`Receiver::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<T, A> {
    /// The alarm went off (it overtakes waiting events).
    Alarm(A),
    /// The next event.
    Event(T),
    /// No events left and none will come.
    Closed,
}

#[derive(Debug)]
struct State<T, A> {
    queue: VecDeque<T>,
    /// The receiver, parked in `next` or `alarmed`.
    waker: Option<Waker>,
    /// No more sends: the receiver closed it or the sender is gone.
    closed: bool,
    /// The first alarm raised, if any.
    alarm: Option<A>,
    /// Events wait unseen until [`Sender::release`] (see [`Sender::hold`]).
    held: bool,
}

impl<T, A> State<T, A> {
    fn park(&mut self, cx: &Context<'_>) {
        match &mut self.waker {
            Some(w) => w.clone_from(cx.waker()),
            None => self.waker = Some(cx.waker().clone()),
        }
    }
}

#[derive(Debug)]
struct Shared<T, A> {
    state: Mutex<State<T, A>>,
    cap: usize,
}

impl<T, A> Shared<T, A> {
    fn lock(&self) -> MutexGuard<'_, State<T, A>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the state, then wakes the receiver if it is parked.
    fn update(&self, f: impl FnOnce(&mut State<T, A>)) {
        let mut st = self.lock();
        f(&mut st);
        let waker = st.waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The sending half.
#[derive(Debug)]
pub struct Sender<T, A> {
    shared: Arc<Shared<T, A>>,
}

/// The receiving half.
#[derive(Debug)]
pub struct Receiver<T, A> {
    shared: Arc<Shared<T, A>>,
}

/// A queue that holds at most `cap` events, with an alarm of type `A`.
pub fn channel<T, A>(cap: usize) -> (Sender<T, A>, Receiver<T, A>) {
    let state = State { queue: VecDeque::new(), waker: None, closed: false, alarm: None, held: false };
    let shared = Arc::new(Shared { state: Mutex::new(state), cap: cap.max(1) });
    (Sender { shared: shared.clone() }, Receiver { shared })
}

impl<T, A> Sender<T, A> {
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

    /// Keeps queued events from the receiver until [`release`](Self::release):
    /// for a connection taking over from one that still has events to give
    /// back, which must come first. The alarm is not held.
    pub fn hold(&self) {
        self.shared.lock().held = true;
    }

    /// Puts `first` ahead of everything queued, in order, and lets the
    /// receiver see them (ends a [`hold`](Self::hold)). May exceed the cap:
    /// these events were already accepted once.
    pub fn release(&self, first: Vec<T>) {
        self.shared.update(|st| {
            for event in first.into_iter().rev() {
                st.queue.push_front(event);
            }
            st.held = false;
        });
    }

    /// Takes every queued event out (the receiver will not see them).
    pub fn take_queued(&self) -> VecDeque<T> {
        std::mem::take(&mut self.shared.lock().queue)
    }

    /// Raises the alarm; the first one raised is the one the receiver sees.
    pub fn alarm(&self, alarm: A) {
        self.shared.update(|st| {
            if st.alarm.is_none() {
                st.alarm = Some(alarm);
            }
        });
    }
}

impl<T, A> Drop for Sender<T, A> {
    fn drop(&mut self) {
        self.shared.update(|st| st.closed = true);
    }
}

impl<T, A: Copy> Receiver<T, A> {
    /// The alarm if raised, else the next event; waits for either.
    pub async fn next(&mut self) -> Next<T, A> {
        poll_fn(|cx| {
            let mut st = self.shared.lock();
            if let Some(alarm) = st.alarm {
                return Poll::Ready(Next::Alarm(alarm));
            }
            if st.held {
                st.park(cx);
                return Poll::Pending;
            }
            if let Some(event) = st.queue.pop_front() {
                return Poll::Ready(Next::Event(event));
            }
            if st.closed {
                return Poll::Ready(Next::Closed);
            }
            st.park(cx);
            Poll::Pending
        })
        .await
    }

    /// Resolves when the alarm is raised.
    pub async fn alarmed(&self) -> A {
        poll_fn(|cx| {
            let mut st = self.shared.lock();
            if let Some(alarm) = st.alarm {
                return Poll::Ready(alarm);
            }
            st.park(cx);
            Poll::Pending
        })
        .await
    }
}

impl<T, A> Receiver<T, A> {
    /// The next event if one is waiting (the alarm does not stop it; a hold
    /// does, except once the queue is closed: then everything comes out).
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut st = self.shared.lock();
        if st.held && !st.closed {
            return Err(TryRecvError::Empty);
        }
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

impl<T, A> Drop for Receiver<T, A> {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order_bounds_and_closes() {
        let (tx, mut rx) = channel::<i32, ()>(2);
        assert_eq!(tx.try_send(1), Ok(()));
        assert_eq!(tx.try_send(2), Ok(()));
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(rx.next().await, Next::Event(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        let waiting = tokio::spawn(async move { (rx.next().await, rx.next().await) });
        tokio::task::yield_now().await;
        assert_eq!(tx.try_send(4), Ok(()));
        drop(tx);
        assert_eq!(waiting.await.ok(), Some((Next::Event(4), Next::Closed)));
    }

    #[test]
    fn a_closed_receiver_refuses_sends_but_keeps_what_is_queued() {
        let (tx, mut rx) = channel::<&str, ()>(4);
        assert_eq!(tx.try_send("a"), Ok(()));
        rx.close();
        assert_eq!(tx.try_send("b"), Err(TrySendError::Closed("b")));
        assert_eq!(rx.try_recv(), Ok("a"));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[tokio::test]
    async fn the_alarm_overtakes_events_wakes_the_receiver_and_keeps_the_first_reason() {
        let (tx, mut rx) = channel::<i32, &str>(4);
        assert_eq!(tx.try_send(1), Ok(()));
        let parked = tokio::spawn(async move {
            let first = rx.next().await;
            let alarm = rx.alarmed().await;
            (first, alarm, rx)
        });
        tokio::task::yield_now().await;
        tx.alarm("slow");
        tx.alarm("later");
        let (first, alarm, mut rx) = parked.await.expect("receiver task");
        assert_eq!(first, Next::Event(1));
        assert_eq!(alarm, "slow");
        assert_eq!(tx.try_send(2), Ok(()));
        assert_eq!(rx.next().await, Next::Alarm("slow"));
        assert_eq!(rx.try_recv(), Ok(2), "events behind the alarm stay for the cleanup");
    }

    #[tokio::test]
    async fn a_held_queue_shows_nothing_until_released_with_the_earlier_events_first() {
        let (tx, mut rx) = channel::<i32, ()>(4);
        tx.hold();
        assert_eq!(tx.try_send(3), Ok(()));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        let waiting = tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..3 {
                got.push(rx.next().await);
            }
            got
        });
        tokio::task::yield_now().await;
        tx.release(vec![1, 2]);
        let got = waiting.await.expect("receiver task");
        assert_eq!(got, vec![Next::Event(1), Next::Event(2), Next::Event(3)]);
        assert_eq!(tx.take_queued().len(), 0);
    }
}
