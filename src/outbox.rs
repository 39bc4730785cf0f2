//! A bounded single-producer, single-consumer event queue: each connection's
//! outbox. Like a bounded `tokio::sync::mpsc` channel with one sender, but its
//! storage is allocated only while events wait, so an idle connection costs
//! a few dozen bytes instead of a preallocated block of slots (measured:
//! about 4 KiB per connection with `mpsc`, see docs/performance.md).
//!
//! It is bounded by bytes, not by count: each event has a [`Weigh`]t, and a
//! [`Budget`] sets what one queue may hold (past it, the queue is *over* and
//! whoever sends is asked to wait: see [`Room`]) and what it may never pass
//! (twice that: sends are refused), plus a total over every queue of the
//! process. Progress (events taken) is counted, so a full queue whose
//! reader still reads can be told from one whose reader is stuck.
//!
//! Besides events it carries an *alarm*: the server's order to close (a slow
//! consumer, a replaced connection, shutdown). The alarm overtakes queued
//! events and wakes the receiver like an event does, so a connection waits on
//! one queue instead of polling a separate cancellation signal (whose shared
//! lock showed in the relay profile) on every turn of its loop.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// What an event costs while it waits: about the bytes it holds.
pub trait Weigh {
    /// Bytes held by this event (payload and bookkeeping).
    fn weight(&self) -> usize;
}

/// Bytes queued in every outbox of the process, against a limit.
#[derive(Debug)]
pub struct Total {
    used: AtomicUsize,
    limit: usize,
}

impl Total {
    /// A shared total that may reach `limit` bytes.
    pub fn new(limit: usize) -> Arc<Total> {
        Arc::new(Total { used: AtomicUsize::new(0), limit })
    }

    /// Bytes queued now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// One atomic add on the hot path (no compare-and-swap loop), taken
    /// back at once in the rare case it went over the limit.
    fn try_add(&self, n: usize) -> bool {
        let before = self.used.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > self.limit {
            self.used.fetch_sub(n, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn add(&self, n: usize) {
        self.used.fetch_add(n, Ordering::Relaxed);
    }

    /// Every byte taken off was added before: the queues account exactly.
    fn sub(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

/// The bounds of one queue.
#[derive(Clone, Debug)]
pub struct Budget {
    /// Bytes a queue may hold before it is *over* (senders are asked to
    /// wait); it refuses sends past twice this.
    pub per_queue: usize,
    /// Bytes all queues together may hold; past it, sends are refused.
    pub total: Arc<Total>,
}

impl Budget {
    /// `per_queue` bytes per queue, no total limit (tests, tools).
    pub fn per_queue(per_queue: usize) -> Budget {
        Budget { per_queue, total: Total::new(usize::MAX) }
    }

    fn hard(&self) -> usize {
        self.per_queue.saturating_mul(2)
    }
}

/// How full a queue is after a send.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fill {
    /// Within its budget.
    Under,
    /// Past its budget: the sender should wait for [`Room`].
    Over,
}

/// Why `try_send` gave the event back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The queue (or all queues together) holds as much as it may.
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
    /// Someone asked whether the client is still there (see
    /// [`Sender::probe`]): the connection should ping it.
    Probe,
    /// No events left and none will come.
    Closed,
}

#[derive(Debug)]
struct State<T, A> {
    /// Events and their weights.
    queue: VecDeque<(T, usize)>,
    /// Sum of the weights queued.
    bytes: usize,
    /// Events taken by the receiver so far (its progress).
    taken: u64,
    /// The receiver, parked in `next` or `alarmed`.
    waker: Option<Waker>,
    /// Senders waiting for the queue to be within its budget again.
    room: Vec<Waker>,
    /// No more sends: the receiver closed it or the sender is gone.
    closed: bool,
    /// The first alarm raised, if any.
    alarm: Option<A>,
    /// Events wait unseen until [`Sender::release`] (see [`Sender::hold`]).
    /// Holds not yet released (see [`Sender::hold`]); events wait unseen
    /// while above zero.
    held: u32,
    /// A probe was asked for and not yet seen by the receiver.
    probe: bool,
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
    budget: Budget,
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

    /// Takes the front event out, with its accounting; wakes senders
    /// waiting for room once the queue is within its budget.
    fn pop(&self, st: &mut State<T, A>) -> Option<T> {
        let (event, weight) = st.queue.pop_front()?;
        st.bytes -= weight;
        st.taken += 1;
        self.budget.total.sub(weight);
        if st.bytes <= self.budget.per_queue {
            for w in st.room.drain(..) {
                w.wake();
            }
        }
        Some(event)
    }
}

impl<T, A> Drop for Shared<T, A> {
    fn drop(&mut self) {
        // What nobody took gives its bytes back to the total.
        let bytes = self.state.get_mut().map(|st| st.bytes).unwrap_or_else(|e| e.into_inner().bytes);
        self.budget.total.sub(bytes);
    }
}

/// What a sender can wait on: room in one queue. Cheap to clone; does not
/// keep the queue open.
#[derive(Clone)]
pub struct Room(Arc<dyn Gauge>);

/// The queue behind a [`Room`], whatever its event type.
trait Gauge: Send + Sync {
    fn poll_room(&self, cx: &Context<'_>) -> Poll<()>;
    fn progress(&self) -> (bool, u64);
}

impl<T: Send, A: Send> Gauge for Shared<T, A> {
    fn poll_room(&self, cx: &Context<'_>) -> Poll<()> {
        let mut st = self.lock();
        if st.closed || st.alarm.is_some() || st.bytes <= self.budget.per_queue {
            return Poll::Ready(());
        }
        // Polled again (a sender's loop turns while it waits): once per waker.
        if !st.room.iter().any(|w| w.will_wake(cx.waker())) {
            st.room.push(cx.waker().clone());
        }
        Poll::Pending
    }

    fn progress(&self) -> (bool, u64) {
        let st = self.lock();
        // A closed or alarmed queue is on its way out: nothing to wait for.
        (st.bytes > self.budget.per_queue && !st.closed && st.alarm.is_none(), st.taken)
    }
}

/// Room that someone else reports: a receiver whose queue is on another
/// node. Closed when that node says the queue is over its budget, open when
/// it says it has room again (or can no longer say anything).
#[derive(Clone, Default, Debug)]
pub struct Valve(Arc<ValveState>);

#[derive(Default, Debug)]
struct ValveState(Mutex<(bool, Vec<Waker>)>);

impl Valve {
    /// Senders that wait on its [`Room`] wait from now on.
    pub fn close(&self) {
        self.0.0.lock().unwrap_or_else(|e| e.into_inner()).0 = true;
    }

    /// Lets every waiting sender go on.
    pub fn open(&self) {
        let wakers = {
            let mut st = self.0.0.lock().unwrap_or_else(|e| e.into_inner());
            st.0 = false;
            std::mem::take(&mut st.1)
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Whether it is closed.
    pub fn is_closed(&self) -> bool {
        self.0.0.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    /// What a sender waits on.
    pub fn room(&self) -> Room {
        Room(self.0.clone())
    }
}

impl Gauge for ValveState {
    fn poll_room(&self, cx: &Context<'_>) -> Poll<()> {
        let mut st = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !st.0 {
            return Poll::Ready(());
        }
        if !st.1.iter().any(|w| w.will_wake(cx.waker())) {
            st.1.push(cx.waker().clone());
        }
        Poll::Pending
    }

    fn progress(&self) -> (bool, u64) {
        (self.0.lock().unwrap_or_else(|e| e.into_inner()).0, 0)
    }
}

impl Room {
    /// Resolves when the queue is within its budget again, closed, or
    /// alarmed.
    pub async fn ready(&self) {
        poll_fn(|cx| self.0.poll_room(cx)).await
    }

    /// Whether both wait on the same queue.
    pub fn same(&self, other: &Room) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.0), Arc::as_ptr(&other.0))
    }

    /// Whether the queue is over its budget, and how many events its
    /// receiver has taken so far.
    pub fn progress(&self) -> (bool, u64) {
        self.0.progress()
    }
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Room")
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

/// A queue bounded by `budget`, with an alarm of type `A`.
pub fn channel<T, A>(budget: Budget) -> (Sender<T, A>, Receiver<T, A>) {
    let state = State {
        queue: VecDeque::new(),
        bytes: 0,
        taken: 0,
        waker: None,
        room: Vec::new(),
        closed: false,
        alarm: None,
        held: 0,
        probe: false,
    };
    let shared = Arc::new(Shared { state: Mutex::new(state), budget });
    (Sender { shared: shared.clone() }, Receiver { shared })
}

impl<T: Weigh, A> Sender<T, A> {
    /// Queues an event without waiting. An empty queue takes any event; a
    /// queue refuses one that would take it past twice its budget, or the
    /// total past its limit.
    pub fn try_send(&self, event: T) -> Result<Fill, TrySendError<T>> {
        self.send_from(event, false)
    }

    /// Queues an event from a sender that waits for [`Room`] when the queue
    /// is over: it may pass the hard bound (by one event per waiting
    /// sender), not the total.
    pub fn try_send_waiting(&self, event: T) -> Result<Fill, TrySendError<T>> {
        self.send_from(event, true)
    }

    fn send_from(&self, event: T, waits: bool) -> Result<Fill, TrySendError<T>> {
        let weight = event.weight();
        let budget = &self.shared.budget;
        let mut st = self.shared.lock();
        if st.closed {
            return Err(TrySendError::Closed(event));
        }
        if !waits && !st.queue.is_empty() && st.bytes + weight > budget.hard() {
            return Err(TrySendError::Full(event));
        }
        if !budget.total.try_add(weight) {
            return Err(TrySendError::Full(event));
        }
        st.queue.push_back((event, weight));
        st.bytes += weight;
        let fill = if st.bytes > budget.per_queue { Fill::Over } else { Fill::Under };
        let waker = st.waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(fill)
    }

    /// Puts `first` ahead of everything queued, in order, and ends one
    /// [`hold`](Self::hold) (the receiver sees the queue when none is left). May pass the
    /// budget: these events were already accepted once.
    pub fn release(&self, first: Vec<T>) {
        let total = &self.shared.budget.total;
        self.shared.update(|st| {
            for event in first.into_iter().rev() {
                let weight = event.weight();
                total.add(weight);
                st.bytes += weight;
                st.queue.push_front((event, weight));
            }
            st.held = st.held.saturating_sub(1);
        });
    }

    /// Queues events already accepted once (a connection's leftovers moving
    /// to its successor), whatever the budget.
    pub fn refill(&self, events: impl IntoIterator<Item = T>) {
        let total = &self.shared.budget.total;
        self.shared.update(|st| {
            for event in events {
                let weight = event.weight();
                total.add(weight);
                st.bytes += weight;
                st.queue.push_back((event, weight));
            }
        });
    }
}

impl<T, A> Sender<T, A> {
    /// Keeps queued events from the receiver until [`release`](Self::release):
    /// for a connection taking over from one that still has events to give
    /// back, which must come first. Holds count: one per connection that
    /// has yet to give back; the events show once each has. The alarm is
    /// not held.
    pub fn hold(&self) {
        self.shared.lock().held += 1;
    }

    /// How many events are queued.
    pub fn len(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes every queued event out (the receiver will not see them).
    pub fn take_queued(&self) -> Vec<T> {
        let mut st = self.shared.lock();
        self.shared.budget.total.sub(st.bytes);
        st.bytes = 0;
        std::mem::take(&mut st.queue).into_iter().map(|(event, _)| event).collect()
    }

    /// Asks the receiver to check that its client is still there; it sees
    /// [`Next::Probe`] ahead of waiting events.
    pub fn probe(&self) {
        self.shared.update(|st| st.probe = true);
    }

    /// Raises the alarm; the first one raised is the one the receiver sees.
    pub fn alarm(&self, alarm: A) {
        self.shared.update(|st| {
            if st.alarm.is_none() {
                st.alarm = Some(alarm);
            }
            for w in st.room.drain(..) {
                w.wake();
            }
        });
    }
}

impl<T: Send + 'static, A: Send + 'static> Sender<T, A> {
    /// What a sender can wait on for room in this queue.
    pub fn room(&self) -> Room {
        Room(self.shared.clone())
    }
}

impl<T, A> Drop for Sender<T, A> {
    fn drop(&mut self) {
        self.shared.update(|st| {
            st.closed = true;
            for w in st.room.drain(..) {
                w.wake();
            }
        });
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
            if std::mem::take(&mut st.probe) {
                return Poll::Ready(Next::Probe);
            }
            if st.held > 0 {
                st.park(cx);
                return Poll::Pending;
            }
            if let Some(event) = self.shared.pop(&mut st) {
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
        if st.held > 0 && !st.closed {
            return Err(TryRecvError::Empty);
        }
        match self.shared.pop(&mut st) {
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
        self.shared.update(|st| {
            st.closed = true;
            for w in st.room.drain(..) {
                w.wake();
            }
        });
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

    impl Weigh for i32 {
        fn weight(&self) -> usize {
            10
        }
    }

    impl Weigh for &str {
        fn weight(&self) -> usize {
            self.len()
        }
    }

    #[tokio::test]
    async fn delivers_in_order_is_over_past_its_budget_and_refuses_past_twice_it() {
        let (tx, mut rx) = channel::<i32, ()>(Budget::per_queue(20));
        assert_eq!(tx.try_send(1), Ok(Fill::Under));
        assert_eq!(tx.try_send(2), Ok(Fill::Under));
        assert_eq!(tx.try_send(3), Ok(Fill::Over));
        assert_eq!(tx.try_send(4), Ok(Fill::Over));
        assert_eq!(tx.try_send(5), Err(TrySendError::Full(5)));
        assert_eq!(rx.next().await, Next::Event(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Ok(4));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        let waiting = tokio::spawn(async move { (rx.next().await, rx.next().await) });
        tokio::task::yield_now().await;
        assert_eq!(tx.try_send(6), Ok(Fill::Under));
        drop(tx);
        assert_eq!(waiting.await.ok(), Some((Next::Event(6), Next::Closed)));
    }

    #[test]
    fn an_empty_queue_takes_any_event_and_the_total_bounds_every_queue() {
        let total = Total::new(25);
        let budget = Budget { per_queue: 4, total: total.clone() };
        let (a, _ra) = channel::<&str, ()>(budget.clone());
        let (b, mut rb) = channel::<&str, ()>(budget);
        assert_eq!(a.try_send("twenty bytes exactly"), Ok(Fill::Over));
        assert_eq!(b.try_send("more than five"), Err(TrySendError::Full("more than five")));
        assert_eq!(b.try_send("five!"), Ok(Fill::Over));
        assert_eq!(total.used(), 25);
        assert_eq!(rb.try_recv(), Ok("five!"));
        assert_eq!(total.used(), 20);
        drop((a, _ra));
        assert_eq!(total.used(), 0, "a dropped queue gives its bytes back");
    }

    #[tokio::test]
    async fn a_sender_waits_for_room_and_sees_the_receiver_progress() {
        let (tx, mut rx) = channel::<i32, ()>(Budget::per_queue(15));
        assert_eq!(tx.try_send(1), Ok(Fill::Under));
        assert_eq!(tx.try_send(2), Ok(Fill::Over));
        let room = tx.room();
        assert_eq!(room.progress(), (true, 0));
        let waiter = tokio::spawn({
            let room = room.clone();
            async move { room.ready().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert_eq!(rx.try_recv(), Ok(1));
        waiter.await.expect("room once within budget");
        assert_eq!(room.progress(), (false, 1));
    }

    #[test]
    fn a_closed_receiver_refuses_sends_but_keeps_what_is_queued() {
        let (tx, mut rx) = channel::<&str, ()>(Budget::per_queue(40));
        assert_eq!(tx.try_send("a"), Ok(Fill::Under));
        rx.close();
        assert_eq!(tx.try_send("b"), Err(TrySendError::Closed("b")));
        assert_eq!(rx.try_recv(), Ok("a"));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[tokio::test]
    async fn the_alarm_overtakes_events_wakes_the_receiver_and_keeps_the_first_reason() {
        let (tx, mut rx) = channel::<i32, &str>(Budget::per_queue(40));
        assert_eq!(tx.try_send(1), Ok(Fill::Under));
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
        assert_eq!(tx.try_send(2), Ok(Fill::Under));
        assert_eq!(rx.next().await, Next::Alarm("slow"));
        assert_eq!(rx.try_recv(), Ok(2), "events behind the alarm stay for the cleanup");
    }

    #[tokio::test]
    async fn a_held_queue_shows_nothing_until_released_with_the_earlier_events_first() {
        let (tx, mut rx) = channel::<i32, ()>(Budget::per_queue(40));
        tx.hold();
        assert_eq!(tx.try_send(3), Ok(Fill::Under));
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
