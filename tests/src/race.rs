//! Racing requests: `n` tasks started together, their outcomes gathered and counted.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;

/// Runs `n` copies of `racer` (given its index) as separate tasks, all started before any is
/// awaited, and returns their outcomes in index order.
pub async fn race<T, F, Fut>(n: usize, racer: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(racer(i))).collect();
    let mut outcomes = Vec::with_capacity(n);
    for task in tasks {
        outcomes.push(task.await.expect("a racing task panicked"));
    }
    outcomes
}

/// How many times each outcome came, to compare with what the race must give.
pub fn tally<T: Ord + Clone + Debug>(outcomes: &[T]) -> BTreeMap<T, usize> {
    let mut counts = BTreeMap::new();
    for outcome in outcomes {
        *counts.entry(outcome.clone()).or_insert(0) += 1;
    }
    counts
}
