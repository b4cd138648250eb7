//! Emergency mode: waiters and newcomers below `Critical` are refused at
//! once, `Critical` is still admitted, and normal admission comes back when
//! the mode ends.

mod support;

use support::{assert_idle, limiter};
use tokio_test::task::spawn;
use tokio_test::{assert_pending, assert_ready_err, assert_ready_ok};
use tower_pressure_core::{Priority, Reason};

#[tokio::test(start_paused = true)]
async fn emergency_refuses_non_critical_work_and_still_admits_critical() {
    let l = limiter(1, 10);
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut low = spawn(l.acquire(Priority::Low));
    let mut normal = spawn(l.acquire(Priority::Normal));
    let mut critical = spawn(l.acquire(Priority::Critical));
    assert_pending!(low.poll());
    assert_pending!(normal.poll());
    assert_pending!(critical.poll());

    l.set_emergency(true);
    assert!(l.snapshot().emergency);
    assert!(
        low.is_woken() && normal.is_woken(),
        "told at once, not at their timeout"
    );
    assert_eq!(assert_ready_err!(low.poll()).reason(), Reason::Emergency);
    assert_eq!(assert_ready_err!(normal.poll()).reason(), Reason::Emergency);
    assert_pending!(critical.poll(), "a Critical waiter stays");
    assert_eq!(l.snapshot().queue_len(), 1);

    // Newcomers below Critical are refused, by either call.
    assert_eq!(
        l.try_acquire(Priority::High).unwrap_err().reason(),
        Reason::Emergency
    );
    let err = assert_ready_err!(spawn(l.acquire(Priority::High)).poll());
    assert_eq!(err.reason(), Reason::Emergency);

    drop(held);
    let c = assert_ready_ok!(critical.poll(), "Critical is admitted");
    drop(c);
    // A permit is free, and still only Critical gets it.
    assert_eq!(
        l.try_acquire(Priority::Bulk).unwrap_err().reason(),
        Reason::Emergency
    );
    let err = assert_ready_err!(spawn(l.acquire(Priority::Normal)).poll());
    assert_eq!(err.reason(), Reason::Emergency);
    drop(l.try_acquire(Priority::Critical).unwrap());
    drop(l.acquire(Priority::Critical).await.unwrap());

    l.set_emergency(false);
    assert!(!l.snapshot().emergency);
    drop(
        l.try_acquire(Priority::Bulk)
            .expect("normal admission is back"),
    );
    drop(l.acquire(Priority::Normal).await.unwrap());

    let s = l.snapshot();
    let c = |p: Priority| s.counts[p].emergency;
    assert_eq!(
        [
            c(Priority::Bulk),
            c(Priority::Low),
            c(Priority::Normal),
            c(Priority::High),
            c(Priority::Critical)
        ],
        [1, 1, 2, 2, 0]
    );
    assert_idle(&l);
}
